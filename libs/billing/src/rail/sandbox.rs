//! The sandbox rail: a card processor's test mode. Fees follow a [`FeeSchedule`], ids derive from
//! idempotency keys, and special payer ids make it decline or fail, so every path of the billing
//! flow can be driven on purpose. Its state is a plain value the control plane persists, so a
//! restart can be tested against what the "processor" remembers.
//!
//! Test payers (by prefix of the payer id):
//! - `test_decline…`: authorize is `Declined`.
//! - `test_fail_authorize…`: authorize is `Failed` (retryable, but fails every time).
//! - `test_fail_capture_once…`: the first capture under a key is `Failed`, the next one with the
//!   same key succeeds (a transient outage).
//! - `test_fail_capture…` (otherwise): every capture is `Failed`; the hold can still be voided.
//!
//! Any other payer is authorized, captured and voided normally.
//!
//! Every call is also written to a request log ([`SandboxRail::take_journal`]), replays and
//! refusals included, the way a processor logs the requests it receives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::journal::{RailCall, RailOperation};
use super::{AuthState, Authorization, PaymentRail, RailError};
use crate::split::FeeSchedule;
use crate::{Currency, MAX_MINOR};

pub const TEST_DECLINE: &str = "test_decline";
pub const TEST_FAIL_AUTHORIZE: &str = "test_fail_authorize";
pub const TEST_FAIL_CAPTURE: &str = "test_fail_capture";
pub const TEST_FAIL_CAPTURE_ONCE: &str = "test_fail_capture_once";

/// Everything the sandbox remembers; serialize it to persist the rail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxState {
    authorizations: BTreeMap<String, Authorization>,
    /// Capture and void keys, so a replay returns the first outcome and a key serves one call.
    operations: BTreeMap<String, Operation>,
    /// Capture keys of `test_fail_capture_once` payers that have had their one failure.
    failed_once: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Operation {
    kind: OperationKind,
    authorization_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OperationKind {
    Capture,
    Void,
}

#[derive(Debug, Clone)]
pub struct SandboxRail {
    fee: FeeSchedule,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    state: SandboxState,
    /// Calls received since the last [`SandboxRail::take_journal`].
    journal: Vec<RailCall>,
}

impl SandboxRail {
    pub fn new(fee: FeeSchedule) -> SandboxRail {
        SandboxRail::with_state(fee, SandboxState::default())
    }

    /// A sandbox that remembers `state` (from [`SandboxRail::state`] before a restart).
    pub fn with_state(fee: FeeSchedule, state: SandboxState) -> SandboxRail {
        SandboxRail {
            fee,
            inner: Arc::new(Mutex::new(Inner {
                state,
                journal: Vec::new(),
            })),
        }
    }

    /// A snapshot to persist after each call.
    pub fn state(&self) -> SandboxState {
        self.lock().state.clone()
    }

    /// The calls received since the last time this was asked, oldest first, to append to the
    /// rail's request log.
    pub fn take_journal(&self) -> Vec<RailCall> {
        std::mem::take(&mut self.lock().journal)
    }

    /// `auth_` and the first 24 hex digits of SHA-256 of the key: the same key, the same id.
    pub fn authorization_id(idempotency_key: &str) -> String {
        let digest = Sha256::digest(idempotency_key.as_bytes());
        format!("auth_{}", &hex::encode(digest)[..24])
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change is a single insert or assignment, so a panicking holder cannot leave the
        // state half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one call under the lock and logs it.
    fn logged(
        &self,
        operation: RailOperation,
        key: &str,
        authorization_id: &str,
        call: impl FnOnce(&mut SandboxState) -> Result<(Authorization, bool), RailError>,
    ) -> Result<Authorization, RailError> {
        let mut inner = self.lock();
        let result = call(&mut inner.state);
        inner.journal.push(RailCall::of(
            operation,
            key,
            Some(authorization_id),
            &result,
        ));
        result.map(|(auth, _)| auth)
    }

    /// Replays an earlier capture or void under `key`, or says the key is free.
    fn replay(
        state: &SandboxState,
        key: &str,
        kind: OperationKind,
        authorization_id: &str,
    ) -> Result<Option<Authorization>, RailError> {
        match state.operations.get(key) {
            None => Ok(None),
            Some(op) if op.kind == kind && op.authorization_id == authorization_id => state
                .authorizations
                .get(authorization_id)
                .cloned()
                .map(Some)
                .ok_or(RailError::NotFound),
            Some(_) => Err(invalid(format!(
                "idempotency key {key:?} was used for another operation"
            ))),
        }
    }
}

fn invalid(reason: String) -> RailError {
    RailError::Invalid { reason }
}

fn check_key(key: &str) -> Result<(), RailError> {
    if key.is_empty() {
        return Err(invalid("empty idempotency key".into()));
    }
    Ok(())
}

impl SandboxRail {
    /// Authorize; `true` when the hold is new.
    fn place_hold(
        &self,
        state: &mut SandboxState,
        idempotency_key: &str,
        payer: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<(Authorization, bool), RailError> {
        check_key(idempotency_key)?;
        if payer.is_empty() {
            return Err(invalid("empty payer".into()));
        }
        if !(1..=MAX_MINOR).contains(&amount_minor) {
            return Err(invalid(format!("amount {amount_minor} is out of range")));
        }
        Currency::parse(currency).map_err(|e| invalid(e.to_string()))?;

        let id = SandboxRail::authorization_id(idempotency_key);
        if let Some(existing) = state.authorizations.get(&id) {
            let same = existing.idempotency_key == idempotency_key
                && existing.payer == payer
                && existing.amount_minor == amount_minor
                && existing.currency == currency;
            return if same {
                Ok((existing.clone(), false))
            } else {
                Err(invalid(format!(
                    "idempotency key {idempotency_key:?} was used with other parameters"
                )))
            };
        }
        if payer.starts_with(TEST_DECLINE) {
            info!(payer, amount_minor, "sandbox rail declined the test payer");
            return Err(RailError::Declined {
                reason: format!("test payer {payer} always declines"),
            });
        }
        if payer.starts_with(TEST_FAIL_AUTHORIZE) {
            warn!(payer, "sandbox rail simulating an outage on authorize");
            return Err(RailError::Failed {
                reason: "sandbox outage on authorize (test payer)".into(),
            });
        }
        let authorization = Authorization {
            id: id.clone(),
            idempotency_key: idempotency_key.to_string(),
            payer: payer.to_string(),
            amount_minor,
            currency: currency.to_string(),
            state: AuthState::Authorized,
            created_at: Utc::now(),
        };
        state.authorizations.insert(id, authorization.clone());
        info!(authorization_id = %authorization.id, payer, amount_minor, currency, "sandbox rail authorized");
        Ok((authorization, true))
    }

    /// Capture; `true` when this call captured (not a replay).
    fn take_payment(
        &self,
        state: &mut SandboxState,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<(Authorization, bool), RailError> {
        check_key(idempotency_key)?;
        let kind = OperationKind::Capture;
        if let Some(done) = Self::replay(state, idempotency_key, kind, authorization_id)? {
            return Ok((done, false));
        }
        let mut auth = state
            .authorizations
            .get(authorization_id)
            .cloned()
            .ok_or(RailError::NotFound)?;
        if auth.state != AuthState::Authorized {
            return Err(RailError::InvalidState {
                state: auth.state.as_str().to_string(),
            });
        }
        let outage = if auth.payer.starts_with(TEST_FAIL_CAPTURE_ONCE) {
            // Fails the first time only; the key is remembered so the retry succeeds.
            let first = !state.failed_once.contains(idempotency_key);
            state.failed_once.insert(idempotency_key.to_string());
            first
        } else {
            auth.payer.starts_with(TEST_FAIL_CAPTURE)
        };
        if outage {
            warn!(
                authorization_id,
                "sandbox rail simulating an outage on capture"
            );
            return Err(RailError::Failed {
                reason: "sandbox outage on capture (test payer)".into(),
            });
        }
        // The schedule's fixed part is in the platform's currency; the hold may be in another.
        let fee_minor = match Currency::parse(&auth.currency) {
            Ok(currency) => self.fee.in_currency(currency).fee(auth.amount_minor),
            Err(_) => self.fee.fee(auth.amount_minor),
        };
        auth.state = AuthState::Captured { fee_minor };
        state.authorizations.insert(auth.id.clone(), auth.clone());
        state.operations.insert(
            idempotency_key.to_string(),
            Operation {
                kind,
                authorization_id: authorization_id.to_string(),
            },
        );
        info!(
            authorization_id,
            amount_minor = auth.amount_minor,
            fee_minor,
            "sandbox rail captured"
        );
        Ok((auth, true))
    }

    /// Void; `true` when this call released the hold (not a replay).
    fn release_hold(
        state: &mut SandboxState,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<(Authorization, bool), RailError> {
        check_key(idempotency_key)?;
        let kind = OperationKind::Void;
        if let Some(done) = Self::replay(state, idempotency_key, kind, authorization_id)? {
            return Ok((done, false));
        }
        let auth = state
            .authorizations
            .get_mut(authorization_id)
            .ok_or(RailError::NotFound)?;
        if auth.state != AuthState::Authorized {
            return Err(RailError::InvalidState {
                state: auth.state.as_str().to_string(),
            });
        }
        auth.state = AuthState::Voided;
        let auth = auth.clone();
        state.operations.insert(
            idempotency_key.to_string(),
            Operation {
                kind,
                authorization_id: authorization_id.to_string(),
            },
        );
        info!(authorization_id, "sandbox rail voided");
        Ok((auth, true))
    }
}

impl PaymentRail for SandboxRail {
    fn authorize(
        &self,
        idempotency_key: &str,
        payer: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<Authorization, RailError> {
        let id = SandboxRail::authorization_id(idempotency_key);
        self.logged(RailOperation::Authorize, idempotency_key, &id, |state| {
            self.place_hold(state, idempotency_key, payer, amount_minor, currency)
        })
    }

    fn capture(
        &self,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<Authorization, RailError> {
        self.logged(
            RailOperation::Capture,
            idempotency_key,
            authorization_id,
            |state| self.take_payment(state, authorization_id, idempotency_key),
        )
    }

    fn void(
        &self,
        authorization_id: &str,
        idempotency_key: &str,
    ) -> Result<Authorization, RailError> {
        self.logged(
            RailOperation::Void,
            idempotency_key,
            authorization_id,
            |state| Self::release_hold(state, authorization_id, idempotency_key),
        )
    }

    fn get(&self, authorization_id: &str) -> Result<Option<Authorization>, RailError> {
        Ok(self
            .lock()
            .state
            .authorizations
            .get(authorization_id)
            .cloned())
    }

    fn list(&self) -> Result<Vec<Authorization>, RailError> {
        Ok(self.lock().state.authorizations.values().cloned().collect())
    }
}
