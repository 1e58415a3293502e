//! The host names an `http_request` capability may reach.

use std::net::IpAddr;

const MAX_HOST_BYTES: usize = 253;
const MAX_LABEL_BYTES: usize = 63;

/// Accepts a lowercase host name ("api.example.com") or a wildcard over its subdomains
/// ("*.example.org"); the error says what is wrong.
pub(super) fn check(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("must not be empty");
    }
    if domain == "*" {
        return Err("a bare '*' would allow every host");
    }
    if domain.contains("://") {
        return Err("must be a host name without a scheme");
    }
    if domain.contains('/') {
        return Err("must be a host name without a path");
    }
    let host = domain.strip_prefix("*.").unwrap_or(domain);
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if bracketed || host.parse::<IpAddr>().is_ok() {
        return Err("IP addresses are not allowed; use a host name");
    }
    if host.contains(':') {
        return Err("must be a host name without a port");
    }
    if host.contains('*') {
        return Err("'*' is only allowed as a leading \"*.\" label");
    }
    if host.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("must be lowercase");
    }
    if host.len() > MAX_HOST_BYTES {
        return Err("is longer than 253 characters");
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 {
        return Err("must have at least two labels, like example.com");
    }
    for label in &labels {
        let valid_chars = label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if label.is_empty() || label.len() > MAX_LABEL_BYTES || !valid_chars {
            return Err("each label must be 1-63 characters of a-z, 0-9 and '-'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label must not start or end with '-'");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("IP addresses are not allowed; use a host name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn host_names_and_wildcards_pass() {
        for ok in [
            "api.example.com",
            "*.example.org",
            "xn--bcher-kva.de",
            "a-1.b2.io",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn everything_else_fails() {
        for bad in [
            "",
            "*",
            "https://api.example.com",
            "api.example.com/path",
            "api.example.com:443",
            "10.0.0.1",
            "[::1]",
            "::1",
            "*.10.0.0.1",
            "API.example.com",
            "localhost",
            "a.*.example.com",
            "**.example.com",
            "-a.example.com",
            "a..example.com",
            "example.com.",
            "a_b.example.com",
            "ex ample.com",
        ] {
            assert!(check(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
