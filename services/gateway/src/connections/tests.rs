#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{HEAD_TIMEOUT, serve};

/// Serves `app` on a free port; the address, the close token and the server's task.
async fn start(app: Router) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let close = CancellationToken::new();
    let server = tokio::spawn(serve(listener, app, close.clone()));
    (addr, close, server)
}

/// A client connection that has sent `head` (a request, or the start of one).
async fn send(addr: SocketAddr, head: &str) -> TcpStream {
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(head.as_bytes()).await.unwrap();
    client
}

async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    String::from_utf8(reply).unwrap()
}

#[tokio::test]
async fn a_handler_sees_the_clients_address() {
    let app = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    let (addr, close, server) = start(app).await;
    let mut client = send(
        addr,
        "GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let reply = read_to_end(&mut client).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.ends_with(&client.local_addr().unwrap().to_string()),
        "{reply}"
    );
    close.cancel();
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_head_sent_too_slowly_loses_its_connection() {
    let (addr, close, server) = start(Router::new().route("/", get(|| async { "ok" }))).await;
    let mut client = send(addr, "GET / HTTP/1.1\r\nHost:").await;
    let started = tokio::time::Instant::now();
    // The paused clock jumps to the server's deadline as soon as everything waits.
    let reply = read_to_end(&mut client).await;
    assert!(
        started.elapsed() >= HEAD_TIMEOUT,
        "closed after {:?}",
        started.elapsed()
    );
    assert!(!reply.contains(" 200 "), "{reply}");
    close.cancel();
    server.await.unwrap();
}

#[tokio::test]
async fn closing_lets_the_request_in_flight_finish_then_returns() {
    let (entered_tx, entered) = oneshot::channel::<()>();
    let (release, released) = oneshot::channel::<()>();
    let slot = std::sync::Mutex::new(Some((entered_tx, released)));
    let slot = std::sync::Arc::new(slot);
    let app = Router::new().route(
        "/slow",
        get(move || {
            let (entered_tx, released) = slot.lock().unwrap().take().unwrap();
            async move {
                entered_tx.send(()).unwrap();
                released.await.unwrap();
                "finished"
            }
        }),
    );
    let (addr, close, server) = start(app).await;
    let mut client = send(addr, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await;
    entered.await.unwrap();
    close.cancel();
    // An absence can only be watched for a while: serve must not return meanwhile.
    let mut server = server;
    let early = tokio::time::timeout(Duration::from_millis(300), &mut server).await;
    assert!(early.is_err(), "serve returned with a request in flight");
    // The request in flight gets its answer, then the connection closes.
    release.send(()).unwrap();
    let reply = read_to_end(&mut client).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("finished"), "{reply}");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns once the last connection closed")
        .unwrap();
}
