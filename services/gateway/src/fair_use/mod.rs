//! Fair use of the gateway: every API request is charged to its caller — the account of its key,
//! or the client's address when it has no valid key — and a caller over its request rate is
//! answered 429 `rate_limited` with `Retry-After`, before it takes any of the gateway's
//! request slots. One caller at its limit never makes another caller's request fail: each
//! has a bucket of its own. The caller is also what event streams are counted by
//! ([`crate::streams`]).
//!
//! Limits are per gateway replica: N replicas admit up to N times the rate. The address is the
//! TCP peer's: behind a proxy, every caller without a key shares the proxy's bucket.

mod accounts;
mod rate;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use frameos_core::ErrorCode;

pub use accounts::Accounts;
pub use rate::RequestRate;

use crate::auth::ApiKey;
use crate::control_plane::ControlPlane;
use crate::error::ApiError;

/// Who a request is charged to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The account a valid API key belongs to, however many keys it has.
    Account(Arc<str>),
    /// A request without a valid key, by client address (IPv6 by its /64: one host has many).
    Address(IpAddr),
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Account(id) => write!(f, "account {id}"),
            Caller::Address(ip) => write!(f, "address {ip}"),
        }
    }
}

impl Caller {
    fn address(peer: Option<SocketAddr>) -> Caller {
        let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.ip().to_canonical());
        Caller::Address(match ip {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
            v4 => v4,
        })
    }
}

/// Set by [`enforce`] on every API request.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!("a route that counts callers is missing the fair-use layer");
            ApiError::new(ErrorCode::Internal, "internal error")
        })
    }
}

/// What the fair-use layer needs: who keys belong to, and the request rate (absent: unlimited).
#[derive(Clone, Debug)]
pub struct FairUse {
    accounts: Accounts,
    rate: Option<RequestRate>,
}

impl FairUse {
    /// `per_sec` requests a second per caller with bursts of `burst`; `per_sec` 0: no limit.
    pub fn new(control_plane: ControlPlane, per_sec: u32, burst: u32) -> Self {
        FairUse {
            accounts: Accounts::new(control_plane),
            rate: RequestRate::new(per_sec, burst),
        }
    }

    /// The caller, charged one request; the wait until it may send another when it is over
    /// its rate. A key not seen within the last minute is looked up first: a request is
    /// charged to an address only when it has no valid key, so nobody else's traffic from the
    /// same address (a NAT, a proxy) ever counts against an account.
    async fn admit(
        &self,
        key: Option<ApiKey>,
        peer: Option<SocketAddr>,
    ) -> Result<Caller, Duration> {
        let caller = self.identify(key, peer).await;
        self.charge(&caller)?;
        Ok(caller)
    }

    /// A malformed header is the handler's to refuse (401); until then, it is anonymous.
    async fn identify(&self, key: Option<ApiKey>, peer: Option<SocketAddr>) -> Caller {
        if let Some(key) = key {
            let account = match self.accounts.cached(&key) {
                Some(account) => Some(account),
                None => self.accounts.resolve(&key).await,
            };
            if let Some(account) = account {
                return Caller::Account(account);
            }
            // Invalid, or the control plane is unreachable: the handler answers that.
        }
        Caller::address(peer)
    }

    fn charge(&self, caller: &Caller) -> Result<(), Duration> {
        match &self.rate {
            Some(rate) => rate.check(caller),
            None => Ok(()),
        }
    }
}

/// The fair-use layer: identifies the caller, refuses it over its rate, and hands the caller
/// to the routes (event streams are counted by it).
pub async fn enforce(State(fair): State<FairUse>, mut request: Request, next: Next) -> Response {
    // Owned parts only cross the await: a request body is not `Sync`.
    let key = ApiKey::from_headers(request.headers()).ok().flatten();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    match fair.admit(key, peer).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(wait) => rate_limited(wait),
    }
}

/// 429 with `Retry-After` in whole seconds (at least 1): when the next request will pass.
fn rate_limited(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let error = ApiError::new(
        ErrorCode::RateLimited,
        format!("too many requests; retry in {seconds}s"),
    );
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_canonical_and_ipv6_hosts_share_their_64() {
        let peer = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        assert_eq!(
            Caller::address(peer("192.0.2.7:4000")),
            Caller::Address("192.0.2.7".parse().unwrap())
        );
        // The same client over an IPv4-mapped IPv6 socket is the same caller.
        assert_eq!(
            Caller::address(peer("[::ffff:192.0.2.7]:4000")),
            Caller::address(peer("192.0.2.7:1"))
        );
        assert_eq!(
            Caller::address(peer("[2001:db8:1:2:aaaa::1]:1")),
            Caller::address(peer("[2001:db8:1:2:bbbb::2]:2"))
        );
        assert_ne!(
            Caller::address(peer("[2001:db8:1:2::1]:1")),
            Caller::address(peer("[2001:db8:1:3::1]:1"))
        );
    }

    #[tokio::test]
    async fn over_the_rate_is_429_with_retry_after_in_whole_seconds() {
        let response = rate_limited(Duration::from_millis(1200));
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
        // A wait under a second still says 1: 0 would invite an immediate retry.
        let response = rate_limited(Duration::from_millis(10));
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
