//! A switchable TCP forwarder to a broker, on a port the test holds for its whole life: while
//! "down" it closes every connection at once (and cuts the forwarded ones), while "up" it
//! forwards. Unlike releasing a port and binding it again later, nobody can take the port in
//! between. It can also hold each new connection for a while before forwarding it: a slow link
//! (e.g. a slow package store).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct BrokerProxy {
    addr: SocketAddr,
    url: String,
    up: watch::Sender<bool>,
    /// Milliseconds each new connection waits before it is forwarded.
    delay_ms: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl BrokerProxy {
    /// A proxy to the broker of `amqp_url`, starting up or down.
    pub async fn start(amqp_url: &str, up: bool) -> anyhow::Result<BrokerProxy> {
        let (scheme, rest) = amqp_url.split_once("://").context("no scheme in the URL")?;
        let (userinfo, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let target = tokio::net::lookup_host(authority)
            .await?
            .next()
            .context("broker address")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let at = if userinfo.is_empty() {
            String::new()
        } else {
            format!("{userinfo}@")
        };
        let url = format!("{scheme}://{at}{addr}/{path}");
        let (sender, state) = watch::channel(up);
        let delay_ms = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve(listener, target, state, delay_ms.clone()));
        Ok(BrokerProxy {
            addr,
            url,
            up: sender,
            delay_ms,
            task,
        })
    }

    /// The broker's URL through this proxy.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Each connection accepted from now on is forwarded only after `delay` (zero: at once).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Up: forward; down: refuse new connections and cut the open ones.
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for BrokerProxy {
    fn drop(&mut self) {
        self.set_up(false);
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    target: SocketAddr,
    state: watch::Receiver<bool>,
    delay_ms: Arc<AtomicU64>,
) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let delay = Duration::from_millis(delay_ms.load(Ordering::Relaxed));
        if !*state.borrow() {
            // Down: the client sees its connection closed, as by a broker that went away.
            drop(inbound);
            continue;
        }
        let mut state = state.clone();
        tokio::spawn(async move {
            // The client's connect succeeded; its first bytes wait, as on a slow link.
            tokio::time::sleep(delay).await;
            let Ok(mut outbound) = TcpStream::connect(target).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = state.wait_for(|up| !*up) => {}
            }
        });
    }
}
