//! Who an execution may reach: allow-listed DNS names on ports 80/443, resolved here and
//! refused when any address is internal (as Stripe's Smokescreen does).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::special::{Reason, special_purpose};

/// A name that takes longer to resolve is treated as unresolvable.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How names are resolved. The sandbox always uses `System`; `Static` exists for tests.
#[derive(Clone, Debug, Default)]
pub enum Resolver {
    #[default]
    System,
    /// Name → addresses, used as given (port included).
    Static(HashMap<String, Vec<SocketAddr>>),
}

/// One execution's egress policy.
#[derive(Clone, Debug)]
pub struct EgressPolicy {
    /// Lowercase names, or `*.suffix` for any subdomain of `suffix` (not `suffix` itself).
    allow_domains: Vec<String>,
    resolver: Resolver,
    /// Tests only: lets a static name point at a loopback test server.
    allow_private: bool,
}

/// Why a request was not let through; `Display` is the one-line reason given to the agent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0:?} is an IP address; only allow-listed host names are reachable")]
    IpLiteral(String),
    #[error("{0:?} is not a valid host name")]
    BadHost(String),
    #[error("{0} is not on this agent's allow-list")]
    NotAllowed(String),
    #[error("port {0} is not allowed (only 80 and 443)")]
    Port(u16),
    #[error("{0} names this machine")]
    LocalName(String),
    #[error("{host} resolves to the internal address {addr} ({reason})")]
    Internal {
        host: String,
        addr: IpAddr,
        /// Boxed: the registry rows would make every `Result` of this type large.
        reason: Box<Reason>,
    },
    #[error("{host} could not be resolved: {reason}")]
    Unresolved { host: String, reason: String },
}

impl Refusal {
    /// A resolution failure is the network's fault, not a policy decision.
    pub fn is_policy(&self) -> bool {
        !matches!(self, Refusal::Unresolved { .. })
    }
}

impl EgressPolicy {
    /// The production policy: system resolver, internal addresses refused.
    pub fn new(allow_domains: &[String]) -> Self {
        Self::with_resolver(allow_domains, Resolver::System, false)
    }

    /// `allow_private = true` and a `Static` resolver are for tests of the proxy only.
    pub fn with_resolver(
        allow_domains: &[String],
        resolver: Resolver,
        allow_private: bool,
    ) -> Self {
        EgressPolicy {
            allow_domains: allow_domains.iter().map(|d| normalize(d)).collect(),
            resolver,
            allow_private,
        }
    }

    /// Checks the name and port without resolving; returns the normalized host.
    pub fn check_name(&self, host: &str, port: u16) -> Result<String, Refusal> {
        let host = normalize(host);
        if looks_like_ip(&host) {
            return Err(Refusal::IpLiteral(host));
        }
        if !is_dns_name(&host) {
            return Err(Refusal::BadHost(host));
        }
        if is_local_name(&host) {
            return Err(Refusal::LocalName(host));
        }
        if !self.allow_domains.iter().any(|p| matches(p, &host)) {
            return Err(Refusal::NotAllowed(host));
        }
        if port != 80 && port != 443 {
            return Err(Refusal::Port(port));
        }
        Ok(host)
    }

    /// Everything: name, port, and every resolved address. Returns the normalized host and
    /// the addresses to connect to (never resolve again: that would allow DNS rebinding).
    pub async fn check(&self, host: &str, port: u16) -> Result<(String, Vec<SocketAddr>), Refusal> {
        let host = self.check_name(host, port)?;
        let addrs = self.resolve(&host, port).await?;
        if !self.allow_private
            && let Some((addr, reason)) = addrs
                .iter()
                .find_map(|a| special_purpose(a.ip()).map(|r| (a.ip(), r)))
        {
            let reason = Box::new(reason);
            return Err(Refusal::Internal { host, addr, reason });
        }
        Ok((host, addrs))
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let unresolved = |reason: String| Refusal::Unresolved {
            host: host.to_string(),
            reason,
        };
        let addrs: Vec<SocketAddr> = match &self.resolver {
            // Used as given, port included: tests point a name at a server on any port.
            Resolver::Static(map) => map.get(host).cloned().unwrap_or_default(),
            Resolver::System => {
                match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                    .await
                {
                    Ok(Ok(found)) => found.collect(),
                    Ok(Err(e)) => return Err(unresolved(e.to_string())),
                    Err(_) => return Err(unresolved("timed out".to_string())),
                }
            }
        };
        if addrs.is_empty() {
            return Err(unresolved("no addresses".to_string()));
        }
        Ok(addrs)
    }
}

/// Lowercase, without the trailing dot of a fully qualified name.
fn normalize(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    name.strip_suffix('.').map(str::to_string).unwrap_or(name)
}

fn matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        None => pattern == host,
    }
}

/// True for a valid allow-list entry: a DNS name, or `*.` and a DNS name.
pub fn is_valid_pattern(pattern: &str) -> bool {
    let p = normalize(pattern);
    let name = p.strip_prefix("*.").unwrap_or(&p);
    is_dns_name(name) && !looks_like_ip(name)
}

/// Any form the C resolver would read as an address: dotted, bracketed, decimal (`2130706433`),
/// hex (`0x7f000001`), octal or short (`0177.1`). No real top-level domain is numeric.
fn looks_like_ip(host: &str) -> bool {
    if host.starts_with('[') || host.parse::<IpAddr>().is_ok() {
        return true;
    }
    let last = host.rsplit('.').next().unwrap_or(host);
    let hex = last
        .strip_prefix("0x")
        .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.chars().all(|c| c.is_ascii_digit()))
}

fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// `localhost` and its subdomains always mean this machine (RFC 6761), whatever a resolver says.
fn is_local_name(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> EgressPolicy {
        EgressPolicy::new(&["API.example.com".to_string(), "*.example.org".to_string()])
    }

    #[test]
    fn names_match_exactly_or_as_subdomains() {
        let p = policy();
        for ok in [
            "api.example.com",
            "API.Example.COM",
            "api.example.com.",
            "a.example.org",
            "a.b.example.org",
        ] {
            assert!(p.check_name(ok, 443).is_ok(), "{ok}");
        }
        for (bad, want) in [
            ("example.com", "not on"),
            ("x.api.example.com", "not on"),
            ("example.org", "not on"),
            ("badexample.org", "not on"),
            ("a.example.org.evil.com", "not on"),
            ("api.example.com:443", "not a valid"),
            ("a b.example.org", "not a valid"),
            ("", "not a valid"),
        ] {
            let refusal = p.check_name(bad, 443).unwrap_err();
            assert!(refusal.to_string().contains(want), "{bad}: {refusal}");
        }
    }

    #[test]
    fn ip_literals_are_refused_in_every_spelling() {
        let p = EgressPolicy::new(&["*.1".to_string(), "2130706433".to_string()]);
        for ip in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "2130706433",
            "0x7f000001",
            "0x7f.1",
            "0177.0.0.1",
            "127.1",
            "169.254.169.254",
        ] {
            assert!(
                matches!(p.check_name(ip, 80), Err(Refusal::IpLiteral(_))),
                "{ip}"
            );
        }
        assert!(!is_valid_pattern("2130706433"));
        assert!(!is_valid_pattern("*.1"));
        assert!(is_valid_pattern("*.example.org"));
        assert!(!is_valid_pattern("*"));
        assert!(!is_valid_pattern("a.*.org"));
    }

    #[test]
    fn only_ports_80_and_443() {
        let p = policy();
        assert!(p.check_name("api.example.com", 80).is_ok());
        assert_eq!(p.check_name("api.example.com", 22), Err(Refusal::Port(22)));
        assert_eq!(
            p.check_name("api.example.com", 8443),
            Err(Refusal::Port(8443))
        );
    }

    #[test]
    fn names_of_this_machine_are_refused_even_when_allow_listed() {
        let p = EgressPolicy::new(&["localhost".to_string(), "*.localhost".to_string()]);
        for name in ["localhost", "LOCALHOST.", "a.localhost", "a.b.localhost."] {
            assert!(
                matches!(p.check_name(name, 443), Err(Refusal::LocalName(_))),
                "{name}"
            );
        }
        // Only the label itself, not names that merely end in it.
        assert!(matches!(
            p.check_name("notlocalhost", 443),
            Err(Refusal::NotAllowed(_))
        ));
    }

    #[tokio::test]
    async fn any_internal_address_refuses_the_name() {
        let public: SocketAddr = "93.184.216.34:443".parse().unwrap();
        let metadata: SocketAddr = "169.254.169.254:443".parse().unwrap();
        let resolver = Resolver::Static(HashMap::from([
            ("api.example.com".to_string(), vec![public]),
            ("a.example.org".to_string(), vec![public, metadata]),
        ]));
        let domains = ["api.example.com".to_string(), "*.example.org".to_string()];
        let p = EgressPolicy::with_resolver(&domains, resolver, false);
        let (host, addrs) = p.check("API.example.com.", 443).await.unwrap();
        assert_eq!(host, "api.example.com");
        assert_eq!(addrs, vec!["93.184.216.34:443".parse().unwrap()]);
        let refused = p.check("a.example.org", 443).await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            "a.example.org resolves to the internal address 169.254.169.254 \
             (link local 169.254.0.0/16)"
        );
        let unresolved = p.check("b.example.org", 443).await.unwrap_err();
        assert!(!unresolved.is_policy(), "{unresolved}");
    }
}
