//! A fake Stripe on a local port: the documented subset of the PaymentIntents API that the
//! control plane's Stripe rail speaks (create with confirm, capture, cancel, retrieve, list),
//! form-encoded requests, `Authorization: Bearer` (401 otherwise), idempotent POSTs (the same
//! key and parameters replay the remembered answer with `Idempotent-Replayed: true`; other
//! parameters are a 400 `idempotency_error`), Stripe's test payment methods (`pm_card_visa`
//! holds, `pm_card_chargeDeclined` is a 402 `card_declined`), and hooks for what a test cannot
//! wait a week for: an authorization's expiry, a hold planted by hand, a failed request.
//! Every request is logged, as received and as answered.

mod intents;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use intents::Intent;
pub use intents::{PM_DECLINED, PM_INSUFFICIENT_FUNDS, PM_MASTERCARD, PM_VISA, Pricing};
use wire::{Outcome, Params};

/// How the next request fails (see [`FakeStripe::fail_next`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A 500 before the endpoint runs: nothing happens, nothing is remembered under the key.
    BeforeExecution,
    /// The endpoint runs and its answer is remembered under the key, but the client gets a 500:
    /// a response lost on its way back.
    AfterExecution,
    /// No answer at all, until the client gives up.
    Hang,
}

/// One request as the fake received and answered it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// Decoded form (POST) or query (GET) pairs, in the order sent.
    pub params: Vec<(String, String)>,
    pub idempotency_key: Option<String>,
    /// The bearer token was the fake's secret key.
    pub authenticated: bool,
    /// 0 for a request left hanging.
    pub status: u16,
    /// Answered from the idempotency layer.
    pub replayed: bool,
}

impl LoggedRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        Params(&self.params).one(name)
    }
}

/// A hold placed at the fake by a test (as a crash between authorize and commit leaves one).
pub struct Planted<'a> {
    pub amount: i64,
    /// Lower case, as Stripe writes it.
    pub currency: &'a str,
    pub metadata: &'a [(&'a str, &'a str)],
    /// How long ago it was created.
    pub age: Duration,
}

struct Remembered {
    /// Method, path and sorted parameters of the first request under the key.
    request: (String, String, Vec<(String, String)>),
    status: u16,
    body: Value,
}

#[derive(Default)]
struct Books {
    /// In creation order.
    intents: Vec<Intent>,
    keys: HashMap<String, Remembered>,
    log: Vec<LoggedRequest>,
    failures: Vec<Failure>,
    next_id: u64,
}

struct Shared {
    secret: String,
    pricing: Pricing,
    books: Mutex<Books>,
    changed: watch::Sender<u64>,
    shutdown: CancellationToken,
}

impl Shared {
    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn touched(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

/// A running fake; stops when dropped.
pub struct FakeStripe {
    /// What `FRAMEOS_STRIPE_API_BASE` should be.
    pub base_url: String,
    /// The only key it accepts.
    pub secret_key: String,
    shared: Arc<Shared>,
}

impl FakeStripe {
    pub async fn start() -> anyhow::Result<FakeStripe> {
        Self::start_with(Pricing::default()).await
    }

    pub async fn start_with(pricing: Pricing) -> anyhow::Result<FakeStripe> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let secret_key = format!("sk_test_{}", uuid::Uuid::new_v4().simple());
        let shared = Arc::new(Shared {
            secret: secret_key.clone(),
            pricing,
            books: Mutex::default(),
            changed: watch::channel(0).0,
            shutdown: CancellationToken::new(),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let stop = shared.shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                eprintln!("fake stripe stopped: {e}");
            }
        });
        Ok(FakeStripe {
            base_url,
            secret_key,
            shared,
        })
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.books().log.clone()
    }

    /// The POSTs so far (what changes things), oldest first.
    pub fn posts(&self) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    /// Every intent, oldest first, with its charge and balance transaction expanded.
    pub fn intents(&self) -> Vec<Value> {
        let expand = ["latest_charge.balance_transaction"];
        self.shared
            .books()
            .intents
            .iter()
            .map(|i| i.render(&expand))
            .collect()
    }

    pub fn intent(&self, id: &str) -> Option<Value> {
        self.intents().into_iter().find(|i| i["id"] == id)
    }

    /// Stripe's expiry of an uncaptured authorization: `canceled`, reason `automatic`.
    pub fn expire(&self, id: &str) -> anyhow::Result<()> {
        let mut books = self.shared.books();
        let intent = books
            .intents
            .iter_mut()
            .find(|i| i.id == id)
            .context("no such intent")?;
        anyhow::ensure!(
            intent.expire(now()),
            "only a requires_capture intent expires"
        );
        drop(books);
        self.shared.touched();
        Ok(())
    }

    /// Places a `requires_capture` intent directly; returns its id.
    pub fn plant(&self, planted: Planted<'_>) -> String {
        let mut books = self.shared.books();
        let id = new_id(&mut books);
        let age = i64::try_from(planted.age.as_secs()).unwrap_or(i64::MAX);
        let mut intent = Intent::held(id.clone(), planted.amount, planted.currency, now() - age);
        for (k, v) in planted.metadata {
            intent.metadata.insert((*k).to_string(), (*v).to_string());
        }
        books.intents.push(intent);
        drop(books);
        self.shared.touched();
        id
    }

    /// Makes the next request (any method, once authenticated) fail as `failure`; calls queue.
    pub fn fail_next(&self, failure: Failure) {
        self.shared.books().failures.push(failure);
    }

    /// Waits until `done` holds of the fake, re-checking on every request and hook.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&FakeStripe) -> bool,
    ) -> anyhow::Result<()> {
        let mut changes = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(self) {
                return Ok(());
            }
            tokio::time::timeout_at(deadline, changes.changed())
                .await
                .with_context(|| format!("waited {timeout:?} for {what}"))??;
        }
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn new_id(books: &mut Books) -> String {
    books.next_id += 1;
    format!("pi_fake{:017}", books.next_id)
}

/// The whole API: authentication, decoding, idempotency and faults, then the endpoint.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let headers = request.headers().clone();
    let params = if method == Method::GET {
        Query::<Vec<(String, String)>>::try_from_uri(request.uri())
            .map(|q| q.0)
            .map_err(|e| e.body_text())
    } else {
        axum::Form::<Vec<(String, String)>>::from_request(request, &())
            .await
            .map(|f| f.0)
            .map_err(|e| e.body_text())
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let mut entry = LoggedRequest {
        method: method.to_string(),
        path: path.clone(),
        params: params.clone().unwrap_or_default(),
        idempotency_key: key.clone(),
        authenticated: presented == Some(shared.secret.as_str()),
        status: 0,
        replayed: false,
    };
    let (outcome, replayed) = if !entry.authenticated {
        // Masked as Stripe masks it: the prefix and the last four characters.
        let shown = presented.map_or("none".to_string(), |k| {
            let chars: Vec<char> = k.chars().collect();
            let head: String = chars.iter().take(8).collect();
            let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
            format!("{head}****{tail}")
        });
        let message = format!("Invalid API Key provided: {shown}");
        (
            wire::error(401, "invalid_request_error", None, &message),
            false,
        )
    } else {
        match params {
            Err(reason) => (
                wire::invalid_param("body", "parameter_invalid_string", &reason),
                false,
            ),
            Ok(params) => {
                let failure = {
                    let mut books = shared.books();
                    (!books.failures.is_empty()).then(|| books.failures.remove(0))
                };
                if failure == Some(Failure::Hang) {
                    shared.books().log.push(entry);
                    shared.touched();
                    shared.shutdown.cancelled().await;
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                call(&shared, &method, &path, key.as_deref(), &params, failure)
            }
        }
    };
    entry.status = outcome.status;
    entry.replayed = replayed;
    shared.books().log.push(entry);
    shared.touched();
    let mut response_headers = HeaderMap::new();
    response_headers.insert("request-id", HeaderValue::from_static("req_fake"));
    if replayed {
        response_headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, response_headers, axum::Json(outcome.body)).into_response()
}

/// An authenticated request with decoded parameters: the idempotency layer around the endpoint.
/// Returns the answer and whether it was replayed.
fn call(
    shared: &Shared,
    method: &Method,
    path: &str,
    key: Option<&str>,
    params: &[(String, String)],
    failure: Option<Failure>,
) -> (Outcome, bool) {
    let mut books = shared.books();
    let mut sorted = params.to_vec();
    sorted.sort();
    let request = (method.to_string(), path.to_string(), sorted);
    let key = key.filter(|_| method == Method::POST);
    if let Some(remembered) = key.and_then(|k| books.keys.get(k)) {
        if remembered.request == request {
            let outcome = Outcome {
                status: remembered.status,
                body: remembered.body.clone(),
                remember: false,
            };
            return (outcome, true);
        }
        let message = format!(
            "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{}' if you meant to execute a different request.",
            key.unwrap_or_default()
        );
        let mut refused = wire::error(400, "idempotency_error", None, &message);
        refused.remember = false;
        return (refused, false);
    }
    if failure == Some(Failure::BeforeExecution) {
        return (server_error(), false);
    }
    let outcome = endpoint(&mut books, &shared.pricing, method, path, &Params(params));
    if let Some(key) = key
        && outcome.remember
    {
        books.keys.insert(
            key.to_string(),
            Remembered {
                request,
                status: outcome.status,
                body: outcome.body.clone(),
            },
        );
    }
    if failure == Some(Failure::AfterExecution) {
        return (server_error(), false);
    }
    (outcome, false)
}

fn server_error() -> Outcome {
    let mut outcome = wire::error(500, "api_error", None, "An unknown error occurred");
    outcome.remember = false;
    outcome
}

fn endpoint(
    books: &mut Books,
    pricing: &Pricing,
    method: &Method,
    path: &str,
    p: &Params,
) -> Outcome {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let find = |books: &mut Books, id: &str| books.intents.iter_mut().position(|i| i.id == id);
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "payment_intents"]) => {
            let id = new_id(books);
            let (intent, outcome) = intents::create(p, id, now(), pricing);
            books.intents.extend(intent);
            outcome
        }
        ("GET", ["v1", "payment_intents"]) => intents::list(&books.intents, p),
        ("GET", ["v1", "payment_intents", id]) => {
            let at = find(books, id);
            intents::retrieve(at.map(|i| &books.intents[i]), id, p)
        }
        ("POST", ["v1", "payment_intents", id, "capture"]) => {
            let at = find(books, id);
            intents::capture(at.map(|i| &mut books.intents[i]), id, p, pricing)
        }
        ("POST", ["v1", "payment_intents", id, "cancel"]) => {
            let at = find(books, id);
            intents::cancel(at.map(|i| &mut books.intents[i]), id, p, now())
        }
        _ => {
            let mut outcome = wire::error(
                404,
                "invalid_request_error",
                None,
                &format!("Unrecognized request URL ({method}: {path})."),
            );
            outcome.remember = false;
            outcome
        }
    }
}
