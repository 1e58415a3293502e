//! The proxy in-process, over real sockets: a static resolver points allow-listed names at
//! loopback servers (hence `allow_private`, which production never sets).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};

use super::*;

struct Fixture {
    proxy: EgressProxy,
    events: mpsc::Receiver<Event>,
    metrics: crate::SandboxMetrics,
    _base: tempfile::TempDir,
}

fn decisions(metrics: &crate::SandboxMetrics, decision: crate::EgressDecision) -> u64 {
    let labels = crate::DecisionLabels { decision };
    metrics.egress_decisions.get_or_create(&labels).get()
}

fn bytes(metrics: &crate::SandboxMetrics, direction: crate::Direction) -> u64 {
    let labels = crate::DirectionLabels { direction };
    metrics.egress_bytes.get_or_create(&labels).get()
}

async fn start(names: &[(&str, SocketAddr)], allow_private: bool) -> Fixture {
    start_with(names, allow_private, crate::Secrets::default()).await
}

async fn start_with(
    names: &[(&str, SocketAddr)],
    allow_private: bool,
    secrets: crate::Secrets,
) -> Fixture {
    let base = tempfile::tempdir().unwrap();
    let resolver = Resolver::Static(
        names
            .iter()
            .map(|(n, a)| (n.to_string(), vec![*a]))
            .collect::<HashMap<_, _>>(),
    );
    let allow = ["echo.test".to_string(), "*.web.test".to_string()];
    let policy = EgressPolicy::with_resolver(&allow, resolver, allow_private);
    let metrics = crate::SandboxMetrics::default();
    let (tx, events) = mpsc::channel(64);
    let proxy = EgressProxy::start(
        &base.path().join("egress"),
        "exec-1",
        policy,
        tx,
        metrics.clone(),
        secrets,
    )
    .await
    .unwrap();
    Fixture {
        proxy,
        events,
        metrics,
        _base: base,
    }
}

/// Echoes every byte back, on a loopback port.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Answers one request with its own head (as received) as the body, then closes.
async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).await.unwrap() == 1 {
                    head.push(byte[0]);
                }
                let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", head.len());
                s.write_all(response.as_bytes()).await.unwrap();
                s.write_all(&head).await.unwrap();
            });
        }
    });
    addr
}

async fn request(proxy: &EgressProxy, raw: &str) -> String {
    let mut s = UnixStream::connect(proxy.socket_path()).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn drain(events: &mut mpsc::Receiver<Event>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(Event::Log { stream, line }) = events.try_recv() {
        assert_eq!(stream, Stream::System);
        lines.push(line);
    }
    lines
}

#[tokio::test]
async fn connect_tunnels_to_an_allowed_name() {
    let echo = echo_server().await;
    let mut f = start(&[("echo.test", echo)], true).await;
    let mut s = UnixStream::connect(f.proxy.socket_path()).await.unwrap();
    s.write_all(b"CONNECT Echo.Test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n")
        .await
        .unwrap();
    let established = b"HTTP/1.1 200 Connection established\r\n\r\n";
    let mut head = vec![0u8; established.len()];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head, established);
    s.write_all(b"ping through the tunnel").await.unwrap();
    let mut back = vec![0u8; 23];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(back, b"ping through the tunnel");
    drop(s);
    f.proxy.stop().await;
    assert_eq!(
        drain(&mut f.events),
        ["egress allowed CONNECT echo.test:443"]
    );
}

#[tokio::test]
async fn plain_http_is_forwarded_in_origin_form() {
    let web = http_server().await;
    let mut f = start(&[("api.web.test", web)], true).await;
    let response = request(
        &f.proxy,
        "GET http://api.web.test/hello?x=1 HTTP/1.1\r\nHost: API.web.test\r\n\
         Proxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let (_, seen) = response.split_once("\r\n\r\n").unwrap();
    assert_eq!(
        seen,
        "GET /hello?x=1 HTTP/1.1\r\nHost: api.web.test\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    f.proxy.stop().await;
    assert_eq!(drain(&mut f.events), ["egress allowed GET api.web.test:80"]);
    assert_eq!(decisions(&f.metrics, crate::EgressDecision::Allowed), 1);
    assert_eq!(decisions(&f.metrics, crate::EgressDecision::Refused), 0);
    // The rewritten head went out; the origin's whole answer came back.
    let head =
        "GET /hello?x=1 HTTP/1.1\r\nHost: api.web.test\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    assert_eq!(bytes(&f.metrics, crate::Direction::Out), head.len() as u64);
    assert_eq!(
        bytes(&f.metrics, crate::Direction::In),
        response.len() as u64
    );
}

#[tokio::test]
async fn refusals_answer_403_with_the_reason() {
    let echo = echo_server().await;
    // allow_private = false: the loopback address itself is refused.
    let mut f = start(&[("echo.test", echo)], false).await;
    let cases = [
        (
            "CONNECT evil.test:443 HTTP/1.1\r\n\r\n",
            "evil.test is not on",
        ),
        (
            "GET http://web.test/ HTTP/1.1\r\n\r\n",
            "web.test is not on",
        ),
        ("CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n", "is an IP address"),
        ("CONNECT [::1]:443 HTTP/1.1\r\n\r\n", "is an IP address"),
        (
            "GET http://2130706433/ HTTP/1.1\r\n\r\n",
            "is an IP address",
        ),
        ("CONNECT echo.test:22 HTTP/1.1\r\n\r\n", "port 22"),
        (
            "CONNECT a.localhost:443 HTTP/1.1\r\n\r\n",
            "a.localhost names this machine",
        ),
        (
            "CONNECT echo.test:443 HTTP/1.1\r\n\r\n",
            "internal address 127.0.0.1",
        ),
    ];
    for (raw, reason) in cases {
        let response = request(&f.proxy, raw).await;
        assert!(
            response.starts_with("HTTP/1.1 403 Forbidden\r\n"),
            "{raw}: {response}"
        );
        assert!(response.contains(reason), "{raw}: {response}");
    }
    let bad = request(&f.proxy, "GET https://echo.test/ HTTP/1.1\r\n\r\n").await;
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    let unknown = request(&f.proxy, "CONNECT nowhere.web.test:443 HTTP/1.1\r\n\r\n").await;
    assert!(unknown.starts_with("HTTP/1.1 502 "), "{unknown}");
    let huge = format!(
        "GET http://echo.test/ HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(17_000)
    );
    let huge = request(&f.proxy, &huge).await;
    assert!(huge.starts_with("HTTP/1.1 431 "), "{huge}");
    // The Host header names an internal address the allow-listed target does not.
    let mismatch = request(
        &f.proxy,
        "CONNECT echo.test:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n",
    )
    .await;
    assert!(mismatch.starts_with("HTTP/1.1 400 "), "{mismatch}");
    assert!(mismatch.contains("does not match"), "{mismatch}");
    f.proxy.stop().await;
    let lines = drain(&mut f.events);
    assert_eq!(lines.len(), cases.len() + 4, "{lines:?}");
    assert_eq!(
        lines[0],
        "egress refused CONNECT evil.test:443: evil.test is not on this agent's allow-list"
    );
    assert_eq!(
        lines[7],
        "egress refused CONNECT echo.test:443: echo.test resolves to the internal address \
         127.0.0.1 (loopback 127.0.0.0/8)"
    );
    assert!(
        lines[9].starts_with("egress failed CONNECT nowhere.web.test:443:"),
        "{lines:?}"
    );
    assert!(
        lines[11].starts_with("egress failed CONNECT echo.test:443: Host header"),
        "{lines:?}"
    );
    // Each connection counted once, by what became of it.
    let refused = lines
        .iter()
        .filter(|l| l.starts_with("egress refused"))
        .count();
    let failed = lines
        .iter()
        .filter(|l| l.starts_with("egress failed"))
        .count();
    assert_eq!(
        decisions(&f.metrics, crate::EgressDecision::Refused),
        refused as u64
    );
    assert_eq!(
        decisions(&f.metrics, crate::EgressDecision::Failed),
        failed as u64
    );
    assert_eq!(decisions(&f.metrics, crate::EgressDecision::Allowed), 0);
}

#[tokio::test]
async fn connections_are_bounded_and_stop_removes_everything() {
    let mut f = start(&[], true).await;
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        idle.push(UnixStream::connect(f.proxy.socket_path()).await.unwrap());
    }
    // Give the accept loop time to take all of them.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Nothing written: a client that had written would likely see a reset instead.
    let mut extra = UnixStream::connect(f.proxy.socket_path()).await.unwrap();
    let mut busy = String::new();
    extra.read_to_string(&mut busy).await.unwrap();
    assert!(busy.starts_with("HTTP/1.1 503 "), "{busy}");
    let dir = f.proxy.dir().to_path_buf();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    let socket = std::fs::metadata(f.proxy.socket_path()).unwrap();
    assert_eq!(socket.permissions().mode() & 0o777, 0o666);
    f.proxy.stop().await;
    assert!(!dir.exists());
    // The open connections were closed by the stop.
    let mut buf = [0u8; 1];
    assert_eq!(idle[0].read(&mut buf).await.unwrap_or(0), 0);
    assert_eq!(
        drain(&mut f.events),
        ["egress failed - -: more than 16 concurrent connections"]
    );
}

#[tokio::test]
async fn a_dropped_proxy_removes_its_directory() {
    let f = start(&[], true).await;
    let dir = f.proxy.dir().to_path_buf();
    assert!(dir.join(SOCKET_NAME).exists());
    drop(f.proxy);
    assert!(!dir.exists());
}

#[test]
fn sweeping_removes_only_directories_of_dead_processes() {
    let base = tempfile::tempdir().unwrap();
    // No pid above the kernel's maximum (4194304) can be alive.
    let dead = base.path().join("frameos-exec-a1-4194399-0-123");
    let alive = base
        .path()
        .join(format!("frameos-exec-b2-{}-1-456", std::process::id()));
    let foreign = base.path().join("not-ours");
    for dir in [&dead, &alive, &foreign] {
        std::fs::create_dir(dir).unwrap();
    }
    std::fs::write(dead.join("egress.sock"), b"").unwrap();
    assert_eq!(super::sweep_orphans(base.path()), 1);
    assert!(!dead.exists());
    assert!(alive.exists() && foreign.exists());
    assert_eq!(super::owner_pid("frameos-exec-x-42-7-99"), Some(42));
    assert_eq!(super::owner_pid("garbage"), None);
    // A missing base is nothing to sweep.
    assert_eq!(super::sweep_orphans(&base.path().join("missing")), 0);
}

#[tokio::test]
async fn decisions_never_show_a_secret_value() {
    let secrets = crate::Secrets::new([("API_TOKEN".to_string(), "tok-8f2e".to_string())]);
    let mut f = start_with(&[], false, secrets).await;
    // A refused https absolute-form request is logged with its target, query and all.
    let bad = request(
        &f.proxy,
        "GET https://echo.test/?key=tok-8f2e HTTP/1.1\r\n\r\n",
    )
    .await;
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    let refused = request(&f.proxy, "CONNECT tok-8f2e.evil.test:443 HTTP/1.1\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 403 "), "{refused}");
    f.proxy.stop().await;
    let lines = drain(&mut f.events);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert!(!line.contains("tok-8f2e"), "{line}");
        assert!(line.contains("***"), "{line}");
    }
}
