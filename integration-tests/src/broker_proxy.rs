//! A switchable TCP forwarder to a broker, on a port the test holds for its whole life: while
//! "down" it closes every connection at once (and cuts the forwarded ones), while "up" it
//! forwards. Unlike releasing a port and binding it again later, nobody can take the port in
//! between.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct BrokerProxy {
    addr: SocketAddr,
    url: String,
    up: watch::Sender<bool>,
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
        let task = tokio::spawn(serve(listener, target, state));
        Ok(BrokerProxy {
            addr,
            url,
            up: sender,
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

async fn serve(listener: TcpListener, target: SocketAddr, state: watch::Receiver<bool>) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        if !*state.borrow() {
            // Down: the client sees its connection closed, as by a broker that went away.
            drop(inbound);
            continue;
        }
        let mut state = state.clone();
        tokio::spawn(async move {
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
