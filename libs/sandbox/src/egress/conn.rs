//! One proxied connection: read the request head, apply the policy, then tunnel (CONNECT) or
//! forward one absolute-form HTTP request with `Connection: close`.

use std::net::SocketAddr;
use std::time::Duration;

use http::Uri;
use http::uri::Authority;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::policy::{EgressPolicy, Refusal};

/// The request line and headers together.
pub(crate) const HEAD_LIMIT: usize = 16 * 1024;
/// Header fields in one request head.
pub(crate) const MAX_HEADERS: usize = 100;
/// A connection (or the head of a request) quiet for this long is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much, and how long, a refused client's remaining bytes are read before closing.
const LINGER_BYTES: usize = 64 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);
/// Request headers that concern only the hop to the proxy.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "proxy-authorization",
    "keep-alive",
    "te",
    "upgrade",
    "host",
];

/// What became of one connection, for the execution's log.
#[derive(Debug)]
pub(crate) enum Decision {
    Allowed {
        method: String,
        host: String,
        port: u16,
    },
    /// The policy said no: 403.
    Refused {
        method: String,
        target: String,
        reason: String,
    },
    /// Malformed, too large, unresolvable or unreachable: not a policy decision.
    Failed {
        method: String,
        target: String,
        reason: String,
    },
}

struct Head {
    method: String,
    /// CONNECT: `host:port`; otherwise the absolute URI.
    target: String,
    /// Header fields in the order received, without the request line.
    headers: Vec<(String, Vec<u8>)>,
}

/// Where a request goes, from its target.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    /// Origin-form path and query for plain HTTP; empty for CONNECT.
    path: String,
}

/// Reads the head, decides, and returns the decision as soon as it is made; what follows
/// (the tunnel, or closing) runs in [`Then`], which the caller awaits after logging.
pub(crate) async fn handle(mut client: UnixStream, policy: &EgressPolicy) -> (Decision, Then) {
    let (head, leftover) = match tokio::time::timeout(IDLE_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(read)) => read,
        Ok(Err(status)) => {
            let reason = status.reason();
            respond(&mut client, status.code(), &reason).await;
            return (failed("-", "-", reason), Then::Close(client));
        }
        Err(_) => {
            let reason = "no request head within 30 s".to_string();
            return (failed("-", "-", reason), Then::Close(client));
        }
    };
    let connect = head.method.eq_ignore_ascii_case("CONNECT");
    let parsed = if connect {
        parse_authority(&head.target)
    } else {
        parse_absolute(&head.target)
    }
    .and_then(|target| check_host_header(&head.headers, &target).map(|()| target));
    let Target { host, port, path } = match parsed {
        Ok(target) => target,
        Err(reason) => {
            respond(&mut client, "400 Bad Request", &reason).await;
            let decision = failed(&head.method, &shown(&head.target), reason);
            return (decision, Then::Close(client));
        }
    };
    let target = format!("{host}:{port}");
    let (host, addrs) = match policy.check(&host, port).await {
        Ok(vetted) => vetted,
        Err(refusal) => return refuse(client, &head.method, &target, refusal).await,
    };
    let origin = match connect_any(&addrs).await {
        Ok(origin) => origin,
        Err(reason) => {
            respond(&mut client, "502 Bad Gateway", &reason).await;
            return (failed(&head.method, &target, reason), Then::Close(client));
        }
    };
    let preamble = if connect {
        None
    } else {
        Some(origin_request(&head, &host, port, &path))
    };
    let decision = Decision::Allowed {
        method: head.method,
        host,
        port,
    };
    let tunnel = Tunnel {
        client,
        origin,
        preamble,
        leftover,
    };
    (decision, Then::Tunnel(tunnel))
}

/// What becomes of the connection once its decision is logged.
pub(crate) enum Then {
    Tunnel(Tunnel),
    /// Refused and answered: read what the client still sends, then close.
    Close(UnixStream),
}

impl Then {
    pub(crate) async fn run(self) -> std::io::Result<()> {
        match self {
            Then::Tunnel(tunnel) => tunnel.run().await,
            Then::Close(mut client) => {
                linger(&mut client).await;
                Ok(())
            }
        }
    }
}

/// An allowed connection, ready to carry bytes.
pub(crate) struct Tunnel {
    client: UnixStream,
    origin: TcpStream,
    /// The rewritten request head for plain HTTP; `None` for CONNECT.
    preamble: Option<Vec<u8>>,
    /// Bytes the client sent after the head.
    leftover: Vec<u8>,
}

impl Tunnel {
    pub(crate) async fn run(mut self) -> std::io::Result<()> {
        match &self.preamble {
            Some(head) => self.origin.write_all(head).await?,
            None => {
                self.client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await?
            }
        }
        self.origin.write_all(&self.leftover).await?;
        pipe(self.client, self.origin).await
    }
}

async fn refuse(
    mut client: UnixStream,
    method: &str,
    target: &str,
    refusal: Refusal,
) -> (Decision, Then) {
    let reason = refusal.to_string();
    let decision = if refusal.is_policy() {
        respond(&mut client, "403 Forbidden", &reason).await;
        Decision::Refused {
            method: method.to_string(),
            target: target.to_string(),
            reason,
        }
    } else {
        respond(&mut client, "502 Bad Gateway", &reason).await;
        failed(method, target, reason)
    };
    (decision, Then::Close(client))
}

fn failed(method: &str, target: &str, reason: String) -> Decision {
    Decision::Failed {
        method: method.to_string(),
        target: target.to_string(),
        reason,
    }
}

/// Why a head could not be read.
enum HeadError {
    TooLarge,
    Malformed(String),
    Closed,
}

impl HeadError {
    fn code(&self) -> &'static str {
        match self {
            HeadError::TooLarge => "431 Request Header Fields Too Large",
            HeadError::Malformed(_) | HeadError::Closed => "400 Bad Request",
        }
    }

    fn reason(&self) -> String {
        match self {
            HeadError::TooLarge => {
                format!("request head exceeds 16 KiB or {MAX_HEADERS} header fields")
            }
            HeadError::Malformed(why) => format!("malformed request head: {why}"),
            HeadError::Closed => "connection closed before a complete request head".to_string(),
        }
    }
}

async fn read_head<R: AsyncRead + Unpin>(r: &mut R) -> Result<(Head, Vec<u8>), HeadError> {
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

/// The head and the bytes after it, `None` while incomplete. httparse does the parsing: no
/// hand-rolled HTTP at the boundary an agent controls.
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
fn parse_authority(target: &str) -> Result<Target, String> {
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
fn parse_absolute(target: &str) -> Result<Target, String> {
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
fn check_host_header(headers: &[(String, Vec<u8>)], target: &Target) -> Result<(), String> {
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
fn shown(text: &str) -> String {
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

/// The request as the origin must see it: origin-form, our Host, no proxy headers, one shot.
fn origin_request(head: &Head, host: &str, port: u16, path: &str) -> Vec<u8> {
    let host_header = if port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let mut out =
        format!("{} {path} HTTP/1.1\r\nHost: {host_header}\r\n", head.method).into_bytes();
    for (name, value) in &head.headers {
        if !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = "no address".to_string();
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "connect timed out".to_string(),
        }
    }
    Err(format!("could not connect: {last}"))
}

/// A short answer; the client is not trusted to read it, so a failed write is ignored.
pub(crate) async fn respond<W: AsyncWrite + Unpin>(w: &mut W, status: &str, reason: &str) {
    let body = format!("{reason}\n");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(IDLE_TIMEOUT, async {
        w.write_all(response.as_bytes()).await?;
        w.shutdown().await
    })
    .await;
}

/// Reads what the client still sends, within bounds, so that closing with unread bytes (the
/// rest of an oversized head) does not reset the connection before the client has read the
/// answer: a lingering close (RFC 9112 §9.6).
async fn linger<R: AsyncRead + Unpin>(r: &mut R) {
    let mut buf = [0u8; 4096];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while left > 0 {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Copies both ways until both sides have closed, or nothing moved for `IDLE_TIMEOUT`.
async fn pipe(client: UnixStream, origin: TcpStream) -> std::io::Result<()> {
    let (mut cr, mut cw) = client.into_split();
    let (mut or, mut ow) = origin.into_split();
    let mut up = [0u8; 16 * 1024];
    let mut down = [0u8; 16 * 1024];
    let (mut up_open, mut down_open) = (true, true);
    while up_open || down_open {
        let step = tokio::time::timeout(IDLE_TIMEOUT, async {
            tokio::select! {
                n = cr.read(&mut up), if up_open => match n? {
                    0 => { up_open = false; ow.shutdown().await }
                    n => ow.write_all(&up[..n]).await,
                },
                n = or.read(&mut down), if down_open => match n? {
                    0 => { down_open = false; cw.shutdown().await }
                    n => cw.write_all(&down[..n]).await,
                },
            }
        })
        .await;
        match step {
            Ok(result) => result?,
            Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "idle")),
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
