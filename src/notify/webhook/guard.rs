//! Where a webhook may go. A webhook URL is the merchant's to choose, so a careless or hostile
//! one must not turn the server into a way into its own network (SSRF): the host is resolved
//! once, every address it resolves to must be public, and the connection goes to exactly the
//! addresses checked (the client's resolver is this one, so nothing resolves the name again
//! between the check and the connect). Loopback, private, link-local (the cloud metadata
//! service at 169.254.169.254 among them), shared, reserved and multicast ranges are refused
//! unless `--webhook-allow-private`. The client follows no redirect and uses no proxy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Longest wait for the system resolver.
const RESOLVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Why a webhook URL is refused; the text is for the merchant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("the webhook URL is not a URL: {0}")]
    NotAUrl(String),
    #[error("the webhook URL must start with http:// or https://")]
    Scheme,
    #[error("the webhook URL must not carry a user name or password")]
    Credentials,
    #[error("the webhook URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("the webhook host {host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
    #[error(
        "the webhook host {host} is at {addr}, a loopback, private, link-local or otherwise \
         non-public address; webhooks go only to public addresses unless the server runs with \
         --webhook-allow-private"
    )]
    NotPublic { host: String, addr: IpAddr },
}

/// The rule the server runs with.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    pub allow_private: bool,
}

impl Guard {
    /// Checks the URL's form, then resolves its host once and checks every address: what a
    /// merchant registering an endpoint hears at once, and what every delivery checks again
    /// (a name's addresses may have changed since).
    pub async fn check(&self, url: &str) -> Result<Url, UrlRefused> {
        let url = self.check_form(url)?;
        if let Some(host) = url.host_str() {
            let port = url.port_or_known_default().unwrap_or(443);
            self.resolve(host, port).await?;
        }
        Ok(url)
    }

    /// The URL's form alone: scheme, no credentials, a host, a bounded length; an IP-literal
    /// host is checked here too (no resolver ever sees it).
    pub fn check_form(&self, url: &str) -> Result<Url, UrlRefused> {
        if url.len() > MAX_URL_LEN {
            return Err(UrlRefused::TooLong);
        }
        let parsed = Url::parse(url.trim()).map_err(|e| UrlRefused::NotAUrl(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UrlRefused::Scheme);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlRefused::Credentials);
        }
        let literal = match parsed.host() {
            None => return Err(UrlRefused::NotAUrl("it has no host".into())),
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
        };
        if let Some(addr) = literal {
            self.allowed(parsed.host_str().unwrap_or_default(), addr)?;
        }
        Ok(parsed)
    }

    fn allowed(&self, host: &str, addr: IpAddr) -> Result<(), UrlRefused> {
        if self.allow_private || is_public(addr) {
            Ok(())
        } else {
            Err(UrlRefused::NotPublic {
                host: host.to_owned(),
                addr,
            })
        }
    }

    /// Resolves `host` once; every address must be allowed (one private address among public
    /// ones is refused too: the connection might pick it).
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, UrlRefused> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let unresolved = |reason: String| UrlRefused::Unresolved {
            host: host.to_owned(),
            reason,
        };
        // The system resolver has no deadline of its own that a request should wait for.
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(RESOLVE_WITHIN, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| unresolved(format!("no answer within {RESOLVE_WITHIN:?}")))?
                .map_err(|e| unresolved(e.to_string()))?
                .collect();
        if addrs.is_empty() {
            return Err(unresolved("no addresses".into()));
        }
        for a in &addrs {
            self.allowed(host, a.ip())?;
        }
        Ok(addrs)
    }

    /// The resolver the webhook client connects through.
    pub fn resolver(self) -> Arc<dyn Resolve> {
        Arc::new(self)
    }
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = *self;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // The connector puts the URL's port on each address.
            let addrs = guard.resolve(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether `addr` is on the public internet: not loopback, private, link-local, shared
/// (carrier-grade NAT), documentation, benchmarking, reserved, multicast, broadcast or
/// unspecified. IPv6 forms that embed an IPv4 address are judged by it.
pub fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking (RFC 2544)
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254, a cloud metadata address)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: may reach an IPv4 private address
        || s[0] == 0x2002 // 6to4: likewise
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0))
    // IPv4-compatible
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "198.18.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "ff02::1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a} passed as public");
        }
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(a.parse().unwrap()), "{a} refused");
        }
    }

    #[tokio::test]
    async fn urls_to_private_places_are_refused_unless_allowed() {
        let strict = Guard {
            allow_private: false,
        };
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "http://[::ffff:10.0.0.1]/hook",
            "http://localhost/hook",
        ] {
            assert!(
                matches!(strict.check(url).await, Err(UrlRefused::NotPublic { .. })),
                "{url} was not refused"
            );
        }
        for (url, expected) in [
            ("ftp://example.com/", UrlRefused::Scheme),
            ("file:///etc/passwd", UrlRefused::Scheme),
            ("http://user:pw@example.com/", UrlRefused::Credentials),
        ] {
            assert_eq!(strict.check(url).await.unwrap_err(), expected, "{url}");
        }
        assert!(matches!(
            strict.check("not a url").await,
            Err(UrlRefused::NotAUrl(_))
        ));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(strict.check(&long).await.unwrap_err(), UrlRefused::TooLong);
        let open = Guard {
            allow_private: true,
        };
        assert!(open.check("http://127.0.0.1:8080/hook").await.is_ok());
    }
}
