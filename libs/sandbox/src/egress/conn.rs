//! One proxied connection: read the request head, apply the policy, then tunnel (CONNECT) or
//! forward one absolute-form HTTP request with `Connection: close`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::head::{
    Head, Target, check_host_header, parse_absolute, parse_authority, read_head, shown,
};
use super::policy::{EgressPolicy, Refusal};
use crate::metrics::{Direction, SandboxMetrics};

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
    pub(crate) async fn run(self, metrics: &SandboxMetrics) -> std::io::Result<()> {
        match self {
            Then::Tunnel(tunnel) => tunnel.run(metrics).await,
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
    pub(crate) async fn run(mut self, metrics: &SandboxMetrics) -> std::io::Result<()> {
        match &self.preamble {
            Some(head) => {
                self.origin.write_all(head).await?;
                metrics.bytes(Direction::Out, head.len());
            }
            None => {
                self.client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await?
            }
        }
        self.origin.write_all(&self.leftover).await?;
        metrics.bytes(Direction::Out, self.leftover.len());
        pipe(self.client, self.origin, metrics).await
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
async fn pipe(
    client: UnixStream,
    origin: TcpStream,
    metrics: &SandboxMetrics,
) -> std::io::Result<()> {
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
                    n => { metrics.bytes(Direction::Out, n); ow.write_all(&up[..n]).await }
                },
                n = or.read(&mut down), if down_open => match n? {
                    0 => { down_open = false; cw.shutdown().await }
                    n => { metrics.bytes(Direction::In, n); cw.write_all(&down[..n]).await }
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
