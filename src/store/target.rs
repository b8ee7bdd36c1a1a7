//! Which database a URL names, checked strictly: an unsupported backend or a mistyped SQLite
//! path is an error, never a fresh empty database.

use std::path::{Path, PathBuf};

use super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite {
        path: PathBuf,
        /// Create the file if it is missing (the default database, or `?mode=rwc`).
        create: bool,
        read_only: bool,
    },
    Postgres {
        url: String,
    },
}

impl DatabaseTarget {
    /// The default database: `cashier.sqlite` inside the data folder, created on first start.
    pub fn default_in(data_dir: &Path) -> DatabaseTarget {
        DatabaseTarget::Sqlite {
            path: data_dir.join("cashier.sqlite"),
            create: true,
            read_only: false,
        }
    }

    /// `cashier.sqlite` inside the data folder, which must exist already.
    pub fn existing_in(data_dir: &Path) -> DatabaseTarget {
        DatabaseTarget::Sqlite {
            path: data_dir.join("cashier.sqlite"),
            create: false,
            read_only: false,
        }
    }

    /// Parses `sqlite://PATH[?mode=rwc]` or `postgres://…` (also `postgresql://`).
    pub fn parse(url: &str) -> Result<DatabaseTarget, StoreError> {
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(StoreError::Config(format!(
                "database URL {url:?} has no scheme: write sqlite://{url} for a SQLite file or postgres://USER@HOST/DB for PostgreSQL"
            )));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let rest = rest.strip_prefix("//").unwrap_or(rest);
                let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                let create = match query {
                    "" => false,
                    "mode=rwc" => true,
                    other => {
                        return Err(StoreError::Config(format!(
                            "SQLite URL option {other:?} is not supported; the only option is ?mode=rwc (create the file if missing)"
                        )))
                    }
                };
                if path.is_empty() {
                    return Err(StoreError::Config("the SQLite URL names no file: write sqlite://PATH".into()));
                }
                Ok(DatabaseTarget::Sqlite {
                    path: PathBuf::from(path),
                    create,
                    read_only: false,
                })
            }
            "postgres" | "postgresql" => Ok(DatabaseTarget::Postgres { url: url.to_owned() }),
            other => Err(StoreError::Config(format!(
                "database backend {other:?} is not supported by this build; use sqlite://PATH or postgres://USER@HOST/DB"
            ))),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseTarget::Sqlite { .. } => Backend::Sqlite,
            DatabaseTarget::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Refuses a SQLite path that does not exist unless creating it was asked for.
    pub(super) fn check(&self) -> Result<(), StoreError> {
        let DatabaseTarget::Sqlite { path, create, .. } = self else {
            return Ok(());
        };
        if path.is_file() {
            return Ok(());
        }
        if path.exists() {
            return Err(StoreError::Config(format!(
                "{} is not a file",
                path.display()
            )));
        }
        if !create {
            return Err(StoreError::Config(format!(
                "SQLite database {} does not exist; check the path, or write sqlite://{}?mode=rwc to create a new one",
                path.display(),
                path.display()
            )));
        }
        match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => Err(StoreError::Config(format!(
                "cannot create {}: folder {} does not exist",
                path.display(),
                dir.display()
            ))),
            _ => Ok(()),
        }
    }

    /// The same database, opened for reading only where the backend supports it.
    pub(super) fn read_only(&self) -> DatabaseTarget {
        match self {
            DatabaseTarget::Sqlite { path, .. } => DatabaseTarget::Sqlite {
                path: path.clone(),
                create: false,
                read_only: true,
            },
            other => other.clone(),
        }
    }

    /// The target for logs and messages: never a password.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseTarget::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            DatabaseTarget::Postgres { url } => redact_url(url),
        }
    }
}

/// Hides the password in `scheme://user:password@host/…` and in a `password=` parameter.
fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[start..].find('/').map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    if let Some(p) = out.find("password=") {
        let end = out[p..].find('&').map_or(out.len(), |i| p + i);
        out.replace_range(p + "password=".len()..end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_schemes() {
        assert_eq!(
            DatabaseTarget::parse("sqlite://./data/x.sqlite").unwrap(),
            DatabaseTarget::Sqlite {
                path: "./data/x.sqlite".into(),
                create: false,
                read_only: false
            }
        );
        assert!(matches!(
            DatabaseTarget::parse("sqlite:///tmp/x.db?mode=rwc").unwrap(),
            DatabaseTarget::Sqlite { create: true, .. }
        ));
        assert_eq!(
            DatabaseTarget::parse("postgresql://u@h/db")
                .unwrap()
                .backend(),
            Backend::Postgres
        );
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        for bad in [
            "mysql://root@localhost/db",
            "./cashier.sqlite",
            "sqlite://",
            "sqlite://x?mode=ro",
        ] {
            let e = DatabaseTarget::parse(bad).unwrap_err().to_string();
            assert!(!e.is_empty(), "{bad}");
        }
        let missing = DatabaseTarget::parse("sqlite:///nonexistent/typo.sqlite").unwrap();
        assert!(missing
            .check()
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
    }

    #[test]
    fn passwords_never_show() {
        let t =
            DatabaseTarget::parse("postgres://cashier:s3cret@db:5432/pay?password=s3cret").unwrap();
        let shown = t.redacted();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.starts_with("postgres://cashier:***@db:5432/pay"),
            "{shown}"
        );
    }
}
