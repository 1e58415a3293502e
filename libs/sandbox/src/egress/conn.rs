//! One proxied connection: read the request head, apply the policy, then tunnel (CONNECT) or
//! forward one absolute-form HTTP request with `Connection: close`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::policy::{EgressPolicy, Refusal};

/// The request line and headers together.
pub(crate) const HEAD_LIMIT: usize = 16 * 1024;
/// A connection (or the head of a request) quiet for this long is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
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
    /// Header lines, without the request line and the final empty line.
    headers: Vec<String>,
}

/// Reads the head, decides, and returns the decision as soon as it is made; the tunnel then
/// runs in `rest`, which the caller awaits after logging.
pub(crate) async fn handle(
    mut client: UnixStream,
    policy: &EgressPolicy,
) -> (Decision, Option<Tunnel>) {
    let (head, leftover) = match tokio::time::timeout(IDLE_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(read)) => read,
        Ok(Err(status)) => {
            let reason = status.reason().to_string();
            respond(&mut client, status.code(), &reason).await;
            return (failed("-", "-", reason), None);
        }
        Err(_) => return (failed("-", "-", "no request head within 30 s".into()), None),
    };
    let connect = head.method.eq_ignore_ascii_case("CONNECT");
    let parsed = if connect {
        parse_authority(&head.target, None)
    } else {
        parse_absolute(&head.target)
    };
    let (host, port, path) = match parsed {
        Ok(parts) => parts,
        Err(reason) => {
            respond(&mut client, "400 Bad Request", &reason).await;
            return (failed(&head.method, &head.target, reason), None);
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
            return (failed(&head.method, &target, reason), None);
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
    (decision, Some(tunnel))
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
) -> (Decision, Option<Tunnel>) {
    let reason = refusal.to_string();
    if refusal.is_policy() {
        respond(&mut client, "403 Forbidden", &reason).await;
        (
            Decision::Refused {
                method: method.to_string(),
                target: target.to_string(),
                reason,
            },
            None,
        )
    } else {
        respond(&mut client, "502 Bad Gateway", &reason).await;
        (failed(method, target, reason), None)
    }
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
    Malformed(&'static str),
    Closed,
}

impl HeadError {
    fn code(&self) -> &'static str {
        match self {
            HeadError::TooLarge => "431 Request Header Fields Too Large",
            HeadError::Malformed(_) | HeadError::Closed => "400 Bad Request",
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            HeadError::TooLarge => "request head exceeds 16 KiB",
            HeadError::Malformed(why) => why,
            HeadError::Closed => "connection closed before a complete request head",
        }
    }
}

async fn read_head<R: AsyncRead + Unpin>(r: &mut R) -> Result<(Head, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > HEAD_LIMIT {
            return Err(HeadError::TooLarge);
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(HeadError::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    if end + 4 > HEAD_LIMIT {
        return Err(HeadError::TooLarge);
    }
    let leftover = buf.split_off(end + 4);
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| HeadError::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !method.bytes().all(is_token) {
        return Err(HeadError::Malformed("malformed request line"));
    }
    let headers: Vec<String> = lines.map(str::to_string).collect();
    if headers.iter().any(|h| !h.contains(':') || h.contains('\n')) {
        return Err(HeadError::Malformed("malformed header line"));
    }
    let head = Head {
        method: method.to_string(),
        target: target.to_string(),
        headers,
    };
    Ok((head, leftover))
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `host[:port]`; a bracketed IPv6 literal is kept whole so the policy refuses it.
fn parse_authority(
    authority: &str,
    default_port: Option<u16>,
) -> Result<(String, u16, String), String> {
    let bad = || format!("bad authority {authority:?}");
    if authority.contains('@') {
        return Err(format!("credentials in {authority:?} are not supported"));
    }
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => {
            let port = authority[i + 1..].parse::<u16>().map_err(|_| bad())?;
            (&authority[..i], port)
        }
        _ => (authority, default_port.ok_or_else(bad)?),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port, String::new()))
}

/// `http://host[:port]/path?query` → host, port, origin-form path.
fn parse_absolute(uri: &str) -> Result<(String, u16, String), String> {
    let lower = uri.get(..7).map(str::to_ascii_lowercase);
    let Some(rest) = (lower.as_deref() == Some("http://")).then(|| &uri[7..]) else {
        return Err(format!(
            "{uri:?} is not an absolute http:// URI (use CONNECT for https)"
        ));
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let (host, port, _) = parse_authority(authority, Some(80))?;
    let path = match path.split('#').next().unwrap_or_default() {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    Ok((host, port, path))
}

/// The request as the origin must see it: origin-form, our Host, no proxy headers, one shot.
fn origin_request(head: &Head, host: &str, port: u16, path: &str) -> Vec<u8> {
    let host_header = if port == 80 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let mut out = format!("{} {path} HTTP/1.1\r\nHost: {host_header}\r\n", head.method);
    for line in &head.headers {
        let name = line.split(':').next().unwrap_or_default().trim();
        if !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
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
mod tests {
    use super::*;

    #[test]
    fn absolute_uris_become_origin_form() {
        let p = parse_absolute;
        assert_eq!(
            p("http://a.example.com/x?y"),
            Ok(("a.example.com".into(), 80, "/x?y".into()))
        );
        assert_eq!(
            p("HTTP://a.example.com"),
            Ok(("a.example.com".into(), 80, "/".into()))
        );
        assert_eq!(
            p("http://a.example.com:443?q"),
            Ok(("a.example.com".into(), 443, "/?q".into()))
        );
        assert_eq!(p("http://[::1]:80/").map(|r| r.0), Ok("[::1]".into()));
        assert!(p("https://a.example.com/").is_err());
        assert!(p("/relative").is_err());
        assert!(p("http://user@a.example.com/").is_err());
        assert!(p("http://a.example.com:99999/").is_err());
    }

    #[test]
    fn connect_targets_need_a_port() {
        assert_eq!(
            parse_authority("a.example.com:443", None),
            Ok(("a.example.com".into(), 443, String::new()))
        );
        assert!(parse_authority("a.example.com", None).is_err());
        assert_eq!(
            parse_authority("[::1]:443", None).map(|r| r.0),
            Ok("[::1]".into())
        );
    }
}
