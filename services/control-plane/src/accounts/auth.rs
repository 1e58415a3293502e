//! Resolving the caller of a request, as a tower layer: [`AuthLayer`] turns the bearer key of
//! every API request into an [`Authentication`] in the request's extensions, and handlers read
//! it with [`caller`] and [`require`] instead of touching keys or the database themselves.
//!
//! A request without a key is anonymous (some endpoints allow that); a key that is presented
//! but unknown is refused by the first handler that asks who is calling. A valid key used for a
//! call beyond its scopes ([`super::scopes`]) is refused here, before any handler runs. Node
//! endpoints carry the node token in the same header and are left to [`crate::node_auth`].

use std::task::{Context, Poll};

use frameos_core::{Error, ErrorCode, Role, Scopes};
use frameos_proto::status::to_status;
use frameos_proto::v1::node_service_server;
use futures::future::BoxFuture;
use sea_orm::DatabaseConnection;
use tonic::codegen::http;

use super::{KeyCache, keys, scopes};

/// Who is calling.
#[derive(Clone, Debug)]
pub struct Principal {
    pub account_id: String,
    pub role: Role,
    /// The public id of the key that made the call.
    pub key_id: String,
    /// What that key may do (never beyond the role).
    pub scopes: Scopes,
}

impl Principal {
    pub fn require(&self, role: Role) -> Result<(), Error> {
        if self.role.at_least(role) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::PermissionDenied,
                format!(
                    "this requires the {role} role; your account is a {}",
                    self.role
                ),
            ))
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// What [`AuthLayer`] found for a request: no key (`Ok(None)`), the caller, or why the
/// presented key was refused.
#[derive(Clone, Debug)]
pub struct Authentication(Result<Option<Principal>, Error>);

/// The caller of `request`; `Ok(None)` when it presented no key.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Option<Principal>, Error> {
    match request.extensions().get::<Authentication>() {
        Some(Authentication(outcome)) => outcome.clone(),
        None => Err(Error::internal(
            "the request did not pass the authentication layer",
        )),
    }
}

/// The caller of `request`, who must hold at least `role`.
pub fn require<T>(request: &tonic::Request<T>, role: Role) -> Result<Principal, Error> {
    let principal = caller(request)?.ok_or_else(|| {
        Error::new(
            ErrorCode::Unauthenticated,
            "missing API key: send `Authorization: Bearer <key>`",
        )
    })?;
    principal.require(role)?;
    Ok(principal)
}

/// Resolves the `authorization: Bearer <key>` header of a request.
async fn authenticate(
    db: &DatabaseConnection,
    cache: &KeyCache,
    headers: &http::HeaderMap,
) -> Result<Option<Principal>, Error> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 256)
        .ok_or_else(keys::invalid_key)?;
    cache.resolve(db, key).await.map(Some)
}

/// Node calls carry the node token, not an API key.
fn is_node_call(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(node_service_server::SERVICE_NAME))
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Puts an [`Authentication`] into every API request (all but node calls).
#[derive(Clone)]
pub struct AuthLayer {
    db: DatabaseConnection,
    cache: KeyCache,
}

impl AuthLayer {
    /// Keys are resolved through `cache`, which the key service evicts revoked keys from.
    pub fn new(db: DatabaseConnection, cache: KeyCache) -> Self {
        AuthLayer { db, cache }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            db: self.db.clone(),
            cache: self.cache.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    db: DatabaseConnection,
    cache: KeyCache,
}

impl<S, B, RB> tower::Service<http::Request<B>> for Authenticate<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request; the fresh one waits for the next.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let (db, cache) = (self.db.clone(), self.cache.clone());
        Box::pin(async move {
            let path = request.uri().path();
            if !is_node_call(path) {
                let outcome = authenticate(&db, &cache, request.headers()).await;
                if let Ok(Some(principal)) = &outcome
                    && let Err(refusal) = scopes::check(path, principal)
                {
                    tracing::info!(key_id = %principal.key_id, %path, "call beyond the key's scopes refused");
                    return Ok(to_status(&refusal).into_http());
                }
                request.extensions_mut().insert(Authentication(outcome));
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer, Service, ServiceExt};

    use super::*;

    #[test]
    fn roles_gate_operations() {
        let user = Principal {
            account_id: "u".into(),
            role: Role::User,
            key_id: "k".into(),
            scopes: Scopes::of_role(Role::User),
        };
        let err = user.require(Role::Developer).unwrap_err();
        assert_eq!(err.code, ErrorCode::PermissionDenied);
        assert!(user.require(Role::User).is_ok());
    }

    #[test]
    fn node_calls_are_recognised_by_their_service() {
        assert!(is_node_call("/frameos.v1.NodeService/Claim"));
        assert!(!is_node_call("/frameos.v1.NodeServiceX/Claim"));
        assert!(!is_node_call("/frameos.v1.AgentService/ListAgents"));
    }

    /// What the layer left in the extensions, as the handler would read it.
    async fn through_layer(
        db: &DatabaseConnection,
        path: &str,
        key: Option<&str>,
    ) -> Option<Result<Option<Principal>, Error>> {
        let handler = tower::service_fn(|request: http::Request<()>| async move {
            let request = tonic::Request::from_http(request);
            let seen = request
                .extensions()
                .get::<Authentication>()
                .map(|_| caller(&request));
            let mut response = http::Response::new(());
            response.extensions_mut().insert(Seen(seen));
            Ok::<_, Infallible>(response)
        });
        let cache = KeyCache::new(std::time::Duration::ZERO, 0);
        let mut service = AuthLayer::new(db.clone(), cache).layer(handler);
        let mut request = http::Request::builder().uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let service = service.ready().await.unwrap();
        let response = service.call(request.body(()).unwrap()).await.unwrap();
        match response.extensions().get::<Seen>() {
            Some(Seen(seen)) => seen.clone(),
            // Refused by the layer itself: the status is the answer.
            None => Some(Err(frameos_proto::status::from_status(
                response.extensions().get::<tonic::Status>().unwrap(),
            ))),
        }
    }

    /// What the handler saw, carried back in the response.
    #[derive(Clone)]
    struct Seen(Option<Result<Option<Principal>, Error>>);

    #[tokio::test]
    async fn the_layer_resolves_keys_into_the_extensions() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let (account, key) = super::super::create(&db, "dev", Role::Developer)
            .await
            .unwrap();
        let path = "/frameos.v1.AgentService/CreateAgent";

        let found = through_layer(&db, path, Some(&key)).await.unwrap().unwrap();
        let found = found.expect("a caller");
        assert_eq!(found.account_id, account.id);
        assert_eq!(found.role, Role::Developer);

        let anonymous = through_layer(&db, path, None).await.unwrap().unwrap();
        assert!(anonymous.is_none());

        let wrong = keys::generate();
        let refused = through_layer(&db, path, Some(&wrong)).await.unwrap();
        assert_eq!(refused.unwrap_err().code, ErrorCode::Unauthenticated);

        // The node token is not an API key: node calls are not looked up at all.
        let node = through_layer(&db, "/frameos.v1.NodeService/Claim", Some(&wrong)).await;
        assert!(node.is_none());
    }

    #[tokio::test]
    async fn the_layer_refuses_calls_beyond_the_keys_scopes() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let (account, _) = super::super::create(&db, "dev", Role::Developer)
            .await
            .unwrap();
        let reader = keys::generate();
        let only_read = keys::NewKey {
            scopes: Some([frameos_core::Scope::Read].iter().collect()),
            ..keys::NewKey::full("reader")
        };
        keys::store(&db, &account.id, &reader, only_read)
            .await
            .unwrap();
        let allowed = through_layer(&db, "/frameos.v1.AgentService/GetAgent", Some(&reader))
            .await
            .unwrap()
            .unwrap()
            .expect("a caller");
        assert_eq!(allowed.key_id.len(), 16);
        let refused = through_layer(&db, "/frameos.v1.AgentService/CreateAgent", Some(&reader))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::PermissionDenied);
        assert!(refused.message.contains("`publish`"), "{refused:?}");
    }
}
