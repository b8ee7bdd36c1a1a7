//! TLS for every call Cashier makes out: the BCHN client, the lnbits funding source (REST and
//! its socket), `cashier dev pay`, webhooks. One rustls configuration, built once at start
//! from the settings, so every call trusts the same roots:
//!
//! - Mozilla's roots compiled in (`webpki-roots`), so calls out work on a host without a CA
//!   bundle (a minimal container);
//! - the system's roots (`/etc/ssl/certs` and the like, `rustls-native-certs`), so a CA the
//!   host's administrator added, or the distribution's updates, count too; none found is not
//!   an error, the compiled-in roots remain;
//! - every certificate in the PEM file `--extra-ca-file`, for private CAs (a LNbits or a node
//!   behind your own TLS proxy). A file that cannot be read or holds no usable certificate
//!   stops the start: a setting given must do what it says.
//!
//! The crypto is ring's, chosen here rather than left to a process-wide default: reqwest is
//! built without a provider of its own, so a client built any other way than from
//! [`Outbound::http`] would panic when built (clippy's `disallowed-methods` refuses
//! those builders outside this file).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The TLS setup every call out uses. Cheap to clone: clones share the configuration.
#[derive(Clone)]
pub struct Outbound {
    tls: Arc<ClientConfig>,
    /// How many roots it trusts, for `Debug`.
    roots: usize,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    /// Trusts the compiled-in and the system's roots, and every certificate in
    /// `extra_ca_file` (PEM). The error names the file and what is wrong with it.
    pub fn new(extra_ca_file: Option<&Path>) -> Result<Outbound, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let system = rustls_native_certs::load_native_certs();
        // Certificates the system store holds that webpki cannot use (rare, old ones) are
        // skipped: one bad root must not stop calls to servers the others vouch for.
        let (system_roots, _) = roots.add_parsable_certificates(system.certs);
        if !system.errors.is_empty() {
            tracing::debug!(errors = ?system.errors, "some of the system's root certificates could not be read");
        }
        if let Some(path) = extra_ca_file {
            for cert in extra_certificates(path)? {
                roots.add(cert).map_err(|e| {
                    format!(
                        "--extra-ca-file {}: a certificate in it cannot be a root: {e}",
                        path.display()
                    )
                })?;
            }
        }
        tracing::debug!(
            roots = roots.len(),
            system_roots,
            "TLS for calls out: compiled-in, system and extra roots"
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS for calls out: {e}"))?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        Ok(Outbound {
            tls: Arc::new(config),
            roots: roots.len(),
        })
    }

    /// A reqwest builder with our TLS preconfigured (callers add timeouts, redirect policy,
    /// resolver).
    pub fn http(&self) -> reqwest::ClientBuilder {
        // The one place a builder is made: every other must start from here (clippy.toml).
        #[allow(clippy::disallowed_methods)]
        let builder = reqwest::Client::builder();
        // reqwest takes the configuration by value; it is a few Arcs and small vectors.
        builder.tls_backend_preconfigured(ClientConfig::clone(&self.tls))
    }

    /// The connector for tokio-tungstenite's wss:// (for the lnbits socket).
    pub fn ws_connector(&self) -> tokio_tungstenite::Connector {
        tokio_tungstenite::Connector::Rustls(self.tls.clone())
    }
}

/// Every certificate in the PEM file, at least one.
fn extra_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let name = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| format!("--extra-ca-file {name}: cannot read it: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--extra-ca-file {name}: not a PEM file of certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "--extra-ca-file {name}: holds no certificate (expected PEM blocks beginning \
             -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

/// When TLS is why a call out failed, what went wrong in plain words and what to do; `None`
/// when the failure lies elsewhere. Looks through the whole chain of causes (reqwest's,
/// hyper's, tungstenite's, I/O errors wrapping rustls').
pub fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(explain(tls));
        }
        // An I/O error shows its inner error's text but hides it from `source()`.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(why) = tls_failure(inner) {
                return Some(why);
            }
        }
        next = e.source();
    }
    None
}

fn explain(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
            "its TLS certificate is not signed by a CA trusted here ({e}); for a private CA, \
             give its certificate with --extra-ca-file"
        ),
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => format!(
            "its TLS certificate is for another name than the URL's ({e}); use the name the \
             certificate is for"
        ),
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => format!("its TLS certificate is out of date ({e}); check both clocks"),
        rustls::Error::InvalidCertificate(C::BadSignature) => format!(
            "its TLS certificate names a CA trusted here but is not signed by it ({e}): \
             another CA of the same name, or an impostor"
        ),
        rustls::Error::InvalidCertificate(_) => {
            format!("its TLS certificate was refused ({e})")
        }
        rustls::Error::InvalidMessage(_) => format!(
            "no TLS answer ({e}): is it a plain http server? https:// needs TLS at that port"
        ),
        _ => format!("the TLS handshake failed ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_extra_file_the_compiled_in_roots_are_trusted() {
        let outbound = Outbound::new(None).unwrap();
        assert!(outbound.roots >= webpki_roots::TLS_SERVER_ROOTS.len());
        assert!(outbound.http().build().is_ok());
        assert!(matches!(
            outbound.ws_connector(),
            tokio_tungstenite::Connector::Rustls(_)
        ));
    }

    #[test]
    fn an_extra_file_that_is_missing_empty_or_garbage_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = Outbound::new(Some(&missing)).unwrap_err();
        assert!(
            e.contains("missing.pem") && e.contains("cannot read"),
            "{e}"
        );

        for (name, content, says) in [
            ("empty.pem", "", "holds no certificate"),
            (
                "words.pem",
                "hello, not a certificate\n",
                "holds no certificate",
            ),
            (
                "key.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "holds no certificate",
            ),
            (
                "cut.pem",
                "-----BEGIN CERTIFICATE-----\nMIIB\n",
                "not a PEM file",
            ),
            (
                "base64.pem",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                "not a PEM file",
            ),
            (
                "der.pem",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "cannot be a root",
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            let e = Outbound::new(Some(&path)).unwrap_err();
            assert!(e.contains(name), "{name}: {e}");
            assert!(e.contains("--extra-ca-file"), "{name}: {e}");
            assert!(e.contains(says), "{name}: {e}");
        }
    }

    #[test]
    fn tls_failures_are_found_inside_io_errors_and_explained() {
        let wrapped = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let why = tls_failure(&wrapped).unwrap();
        assert!(why.contains("--extra-ca-file"), "{why}");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(tls_failure(&refused), None);
    }
}
