//! Where a webhook may go: the sandbox's egress rule (no special-purpose address: private,
//! loopback, link-local, metadata, …) checked on the URL when the execution is created, and on
//! every resolved address of every hop when it is delivered, so neither DNS nor a redirect
//! leads it inside. Loopback only with `FRAMEOS_WEBHOOK_ALLOW_LOOPBACK` (development, tests).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use frameos_core::{Error, ErrorCode};
use reqwest::Url;

/// The longest `webhook_url` accepted.
pub const MAX_URL_BYTES: usize = 2048;
/// A name that takes longer to resolve is treated as unresolvable.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The rule a webhook target must pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct Guard {
    pub allow_loopback: bool,
}

/// A target that passed: the URL and the one address to connect to.
#[derive(Debug, Clone)]
pub struct Vetted {
    pub url: Url,
    /// `None` for an IP literal (the URL is the address).
    pub pinned: Option<(String, SocketAddr)>,
}

impl Guard {
    /// `webhook_url` of a new execution: a well-formed http(s) URL without credentials whose
    /// host, if it is an address, is allowed. A name is resolved only at delivery.
    pub fn parse(&self, raw: &str) -> Result<Url, Error> {
        let invalid =
            |why: String| Error::new(ErrorCode::ValidationFailed, format!("webhook_url {why}"));
        if raw.len() > MAX_URL_BYTES {
            return Err(invalid(format!("is longer than {MAX_URL_BYTES} bytes")));
        }
        let url = Url::parse(raw).map_err(|e| invalid(format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("must be an http or https URL".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials".into()));
        }
        let host = url
            .host_str()
            .ok_or_else(|| invalid("has no host".into()))?;
        if let Some(ip) = literal(host) {
            self.check(ip)
                .map_err(|why| invalid(format!("points inside: {why}")))?;
        } else if is_local_name(host) && !self.allow_loopback {
            return Err(invalid(format!("points inside: {host} names this machine")));
        }
        Ok(url)
    }

    /// Resolves `url`'s host and checks every address; the first one is the one to use.
    pub async fn vet(&self, url: &Url) -> Result<Vetted, String> {
        let host = url.host_str().ok_or("the URL has no host")?.to_string();
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        if let Some(ip) = literal(&host) {
            self.check(ip)?;
            return Ok(Vetted {
                url: url.clone(),
                pinned: None,
            });
        }
        if is_local_name(&host) && !self.allow_loopback {
            return Err(format!("{host} names this machine"));
        }
        let addrs: Vec<SocketAddr> = tokio::time::timeout(
            RESOLVE_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| format!("{host} could not be resolved in time"))?
        .map_err(|e| format!("{host} could not be resolved: {e}"))?
        .collect();
        // Any internal address refuses the name: a rebinding answer is not tried again.
        for addr in &addrs {
            self.check(addr.ip())
                .map_err(|why| format!("{host} resolves to {why}"))?;
        }
        let first = *addrs
            .first()
            .ok_or_else(|| format!("{host} has no address"))?;
        Ok(Vetted {
            url: url.clone(),
            pinned: Some((host, first)),
        })
    }

    fn check(&self, ip: IpAddr) -> Result<(), String> {
        if self.allow_loopback && ip.is_loopback() {
            return Ok(());
        }
        match frameos_sandbox::special_purpose(ip) {
            None => Ok(()),
            Some(reason) => Err(format!("the internal address {ip} ({reason})")),
        }
    }
}

/// The address a URL host spells, brackets of IPv6 removed.
fn literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

fn is_local_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_and_odd_urls_are_refused_at_once() {
        let guard = Guard::default();
        for bad in [
            "ftp://example.com/x",
            "http://user:pw@example.com/",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "http://127.0.0.1:9000/",
            "http://localhost/hook",
            "http://[::ffff:10.0.0.1]/",
            "not a url",
        ] {
            let error = guard.parse(bad).unwrap_err();
            assert_eq!(error.code, ErrorCode::ValidationFailed, "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(guard.parse(&long).is_err());
        assert!(guard.parse("https://hooks.example.com/frameos?x=1").is_ok());
        assert!(guard.parse("http://93.184.216.34:8443/").is_ok());
    }

    #[test]
    fn loopback_only_when_allowed_and_nothing_else_inside() {
        let guard = Guard {
            allow_loopback: true,
        };
        assert!(guard.parse("http://127.0.0.1:9000/hook").is_ok());
        assert!(guard.parse("http://localhost:9000/hook").is_ok());
        assert!(guard.parse("http://10.1.2.3/").is_err());
        assert!(guard.parse("http://169.254.169.254/").is_err());
    }

    #[tokio::test]
    async fn delivery_checks_the_resolved_addresses() {
        let strict = Guard::default();
        let url = Url::parse("http://127.0.0.1:1/").unwrap();
        assert!(strict.vet(&url).await.is_err());
        let open = Guard {
            allow_loopback: true,
        };
        assert!(open.vet(&url).await.unwrap().pinned.is_none());
        let url = Url::parse("http://localhost:1/").unwrap();
        let vetted = open.vet(&url).await.unwrap();
        assert!(vetted.pinned.unwrap().1.ip().is_loopback());
        assert!(strict.vet(&url).await.is_err());
    }
}
