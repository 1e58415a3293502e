//! The request head an agent sends the proxy, and where it asks to go. httparse reads the head
//! and `http` the target: no hand-rolled HTTP parsing at the boundary an agent controls.

use http::Uri;
use http::uri::Authority;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The request line and headers together.
pub(crate) const HEAD_LIMIT: usize = 16 * 1024;
/// Header fields in one request head.
pub(crate) const MAX_HEADERS: usize = 100;

/// A request head as received.
pub(crate) struct Head {
    pub(crate) method: String,
    /// CONNECT: `host:port`; otherwise the absolute URI.
    pub(crate) target: String,
    /// Header fields in the order received, without the request line.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

/// Where a request goes, from its target.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Origin-form path and query for plain HTTP; empty for CONNECT.
    pub(crate) path: String,
}

/// Why a head could not be read.
pub(crate) enum HeadError {
    TooLarge,
    Malformed(String),
    Closed,
}

impl HeadError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            HeadError::TooLarge => "431 Request Header Fields Too Large",
            HeadError::Malformed(_) | HeadError::Closed => "400 Bad Request",
        }
    }

    pub(crate) fn reason(&self) -> String {
        match self {
            HeadError::TooLarge => {
                format!("request head exceeds 16 KiB or {MAX_HEADERS} header fields")
            }
            HeadError::Malformed(why) => format!("malformed request head: {why}"),
            HeadError::Closed => "connection closed before a complete request head".to_string(),
        }
    }
}

pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<(Head, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(parsed) = parse_head(&buf)? {
            return Ok(parsed);
        }
        if buf.len() > HEAD_LIMIT {
            return Err(HeadError::TooLarge);
        }
    }
}

/// The head and the bytes after it, `None` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, Vec<u8>)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if len > HEAD_LIMIT {
        return Err(HeadError::TooLarge);
    }
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Err(HeadError::Malformed("no request line".to_string()));
    };
    let headers = request
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    let head = Head {
        method: method.to_string(),
        target: target.to_string(),
        headers,
    };
    Ok(Some((head, buf[len..].to_vec())))
}

/// CONNECT's `host:port`. A bracketed IPv6 literal is kept whole so the policy refuses it.
pub(crate) fn parse_authority(target: &str) -> Result<Target, String> {
    let authority: Authority = target
        .parse()
        .map_err(|_| format!("bad authority {:?}", shown(target)))?;
    let (host, port) = host_and_port(&authority)?;
    let port = port.ok_or_else(|| format!("CONNECT target {:?} has no port", shown(target)))?;
    Ok(Target {
        host,
        port,
        path: String::new(),
    })
}

/// `http://host[:port]/path?query` → host, port, origin-form path.
pub(crate) fn parse_absolute(target: &str) -> Result<Target, String> {
    let not_absolute = || {
        format!(
            "{:?} is not an absolute http:// URI (use CONNECT for https)",
            shown(target)
        )
    };
    let uri: Uri = target.parse().map_err(|_| not_absolute())?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(not_absolute());
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(not_absolute());
    }
    let (host, port) = host_and_port(authority)?;
    let path = match uri.path_and_query().map(|pq| pq.as_str()) {
        None | Some("") => "/".to_string(),
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
    };
    Ok(Target {
        host,
        port: port.unwrap_or(80),
        path,
    })
}

/// Host and port of an authority; user information (`allowed.example@10.0.0.1`) is refused,
/// it is how one name is made to look like another.
fn host_and_port(authority: &Authority) -> Result<(String, Option<u16>), String> {
    let text = authority.as_str();
    if text.contains('@') {
        return Err(format!(
            "credentials in {:?} are not supported",
            shown(text)
        ));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(format!("no host in {:?}", shown(text)));
    }
    // Not `Authority::port`: it reads an out-of-range port as no port at all.
    let port = match text.strip_prefix(host) {
        Some("") => None,
        Some(rest) => Some(
            rest.strip_prefix(':')
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| format!("bad port in {:?}", shown(text)))?,
        ),
        None => return Err(format!("bad authority {:?}", shown(text))),
    };
    Ok((host.to_string(), port))
}

/// A Host header must name the target: a proxy that forwarded by one and checked the other
/// would be fooled.
pub(crate) fn check_host_header(
    headers: &[(String, Vec<u8>)],
    target: &Target,
) -> Result<(), String> {
    let mut hosts = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("host"));
    let Some((_, value)) = hosts.next() else {
        return Ok(());
    };
    if hosts.next().is_some() {
        return Err("more than one Host header".to_string());
    }
    let value = String::from_utf8_lossy(value);
    let mismatch = || {
        format!(
            "Host header {:?} does not match the request target {}:{}",
            shown(&value),
            target.host,
            target.port
        )
    };
    let authority: Authority = value.trim().parse().map_err(|_| mismatch())?;
    let (host, port) = host_and_port(&authority).map_err(|_| mismatch())?;
    let same_host = host
        .trim_end_matches('.')
        .eq_ignore_ascii_case(target.host.trim_end_matches('.'));
    if !same_host || port.is_some_and(|p| p != target.port) {
        return Err(mismatch());
    }
    Ok(())
}

/// Agent-chosen text as it appears in a log line or an answer: bounded.
pub(crate) fn shown(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
