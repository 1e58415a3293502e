//! gRPC messages → the JSON of API.md §2. Absent optional fields are omitted, not null; the one
//! exception is `latest_version`, which is null until a version is published. The fixed sets
//! (status, role, decision, stream) are the core vocabulary enums, so the document lists their
//! values; a reply the control plane should never send (an UNSPECIFIED enum, a missing message)
//! is an internal error, not a guess.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat};
use frameos_core::{
    ChargeStatus, Error, ExecutionStatus, LogStream, ReviewDecision, Role, VersionStatus,
};
use frameos_proto::{ProtoEnum, v1};
use serde::Serialize;
use utoipa::ToSchema;

use crate::pricing::Pricing;

/// RFC 3339 in UTC, e.g. `2025-01-31T09:30:00.123456Z`.
pub fn timestamp(t: Option<&prost_types::Timestamp>) -> Option<String> {
    let t = t?;
    let at = DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)?;
    Some(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A vocabulary field of a control plane reply.
fn word<T: ProtoEnum>(value: i32, field: &str) -> Result<T, Error> {
    T::from_proto(value)
        .map_err(|e| Error::internal(format!("the control plane sent {field}: {}", e.message)))
}

/// The message a control plane reply wraps.
pub fn wrapped<T>(message: Option<T>, what: &str) -> Result<T, Error> {
    message.ok_or_else(|| Error::internal(format!("the control plane sent no {what}")))
}

/// `TryFrom<v1::FooResponse>` for the view of the one message a response wraps.
macro_rules! from_wrapper {
    ($($view:ty: $response:ty => $field:ident),+ $(,)?) => {$(
        impl TryFrom<$response> for $view {
            type Error = Error;

            fn try_from(r: $response) -> Result<Self, Error> {
                wrapped(r.$field, stringify!($field))?.try_into()
            }
        }
    )+};
}

from_wrapper! {
    AccountView: v1::WhoAmIResponse => account,
    AgentView: v1::CreateAgentResponse => agent,
    AgentView: v1::UpdateAgentResponse => agent,
    AgentView: v1::GetAgentResponse => agent,
    VersionView: v1::PublishVersionResponse => version,
    VersionView: v1::ApproveVersionResponse => version,
    VersionView: v1::RejectVersionResponse => version,
    ExecutionView: v1::CreateExecutionResponse => execution,
    ExecutionView: v1::GetExecutionResponse => execution,
    ExecutionView: v1::CancelExecutionResponse => execution,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    /// `user`, `developer` or `admin`.
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub created_at: Option<String>,
}

impl TryFrom<v1::Account> for AccountView {
    type Error = Error;

    fn try_from(a: v1::Account) -> Result<Self, Error> {
        Ok(AccountView {
            created_at: timestamp(a.created_at.as_ref()),
            role: word(a.role, "role")?,
            id: a.id,
            name: a.name,
        })
    }
}

/// A new account with its API key, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewAccountView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub api_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub created_at: Option<String>,
}

impl TryFrom<v1::CreateAccountResponse> for NewAccountView {
    type Error = Error;

    fn try_from(r: v1::CreateAccountResponse) -> Result<Self, Error> {
        let account = AccountView::try_from(wrapped(r.account, "account")?)?;
        Ok(NewAccountView {
            id: account.id,
            name: account.name,
            role: account.role,
            api_key: r.api_key,
            created_at: account.created_at,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub owner_id: String,
    /// The developer's account name, as the marketplace shows it.
    pub owner_name: String,
    pub pricing: Pricing,
    /// The highest published version; null while none is.
    #[schema(required = true)]
    pub latest_version: Option<VersionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub created_at: Option<String>,
    /// Why and when an admin banned it; absent unless banned (only the owner and admins see
    /// a banned agent).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ban: Option<BanView>,
}

/// An admin's ban of an agent: it never runs again.
#[derive(Debug, Serialize, ToSchema)]
pub struct BanView {
    /// Why, for the owner.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub banned_at: Option<String>,
}

impl TryFrom<v1::Agent> for AgentView {
    type Error = Error;

    fn try_from(a: v1::Agent) -> Result<Self, Error> {
        Ok(AgentView {
            created_at: timestamp(a.created_at.as_ref()),
            ban: a.ban.map(|b| BanView {
                banned_at: timestamp(b.banned_at.as_ref()),
                reason: b.reason,
            }),
            latest_version: a.latest_version.map(VersionView::try_from).transpose()?,
            pricing: Pricing::from(a.pricing),
            id: a.id,
            slug: a.slug,
            name: a.name,
            description: a.description,
            owner_id: a.owner_id,
            owner_name: a.owner_name,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    pub items: Vec<AgentView>,
    /// Present when there are more; pass it back as `page_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_page_token: Option<String>,
}

impl TryFrom<v1::ListAgentsResponse> for AgentList {
    type Error = Error;

    fn try_from(r: v1::ListAgentsResponse) -> Result<Self, Error> {
        Ok(AgentList {
            items: r
                .items
                .into_iter()
                .map(AgentView::try_from)
                .collect::<Result<_, _>>()?,
            next_page_token: Some(r.next_page_token).filter(|t| !t.is_empty()),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    /// The agent's slug.
    pub agent: String,
    pub version: String,
    /// `pending_review`, `published`, `rejected` or `banned`.
    pub status: VersionStatus,
    /// Hex SHA-256 of the package bytes.
    pub sha256: String,
    pub size_bytes: u64,
    pub scan: ScanView,
    /// `agent.json` as validated, with defaults filled in.
    #[schema(value_type = Object)]
    pub manifest: serde_json::Value,
    /// The admin's decision, or the scanner's rejection; absent while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub review: Option<ReviewView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub created_at: Option<String>,
    /// When it was published (by an admin, or at upload in the auto review mode); absent
    /// unless published.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub published_at: Option<String>,
    /// True while the version waits for an admin's spot check (the auto review mode sampled
    /// it); only admins see it, and only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub spot_check: bool,
}

impl TryFrom<v1::Version> for VersionView {
    type Error = Error;

    fn try_from(v: v1::Version) -> Result<Self, Error> {
        Ok(VersionView {
            manifest: manifest(&v),
            created_at: timestamp(v.created_at.as_ref()),
            published_at: timestamp(v.published_at.as_ref()),
            scan: ScanView::from(v.scan.unwrap_or_default()),
            review: v.review.map(ReviewView::try_from).transpose()?,
            status: word(v.status, "version status")?,
            agent: v.agent_slug,
            version: v.version,
            sha256: v.sha256,
            size_bytes: v.size_bytes,
            spot_check: v.spot_check,
        })
    }
}

fn manifest(v: &v1::Version) -> serde_json::Value {
    match serde_json::from_str(&v.manifest_json) {
        Ok(value) => value,
        Err(error) => {
            // The control plane stored it after validating it: this is a bug, not bad input.
            tracing::warn!(agent = %v.agent_slug, version = %v.version, %error, "unreadable manifest_json");
            serde_json::Value::Null
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    pub items: Vec<VersionView>,
}

impl VersionList {
    fn of(items: Vec<v1::Version>) -> Result<Self, Error> {
        Ok(VersionList {
            items: items
                .into_iter()
                .map(VersionView::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl TryFrom<v1::ListVersionsResponse> for VersionList {
    type Error = Error;

    fn try_from(r: v1::ListVersionsResponse) -> Result<Self, Error> {
        VersionList::of(r.items)
    }
}

impl TryFrom<v1::ListReleasesResponse> for VersionList {
    type Error = Error;

    fn try_from(r: v1::ListReleasesResponse) -> Result<Self, Error> {
        VersionList::of(r.items)
    }
}

impl TryFrom<v1::ListReviewsResponse> for VersionList {
    type Error = Error;

    fn try_from(r: v1::ListReviewsResponse) -> Result<Self, Error> {
        VersionList::of(r.items)
    }
}

/// The scanner's report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanView {
    pub passed: bool,
    pub violations: Vec<ViolationView>,
}

impl From<v1::ScanReport> for ScanView {
    fn from(s: v1::ScanReport) -> Self {
        ScanView {
            passed: s.passed,
            violations: s.violations.into_iter().map(ViolationView::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViolationView {
    pub rule: String,
    /// `low`, `medium` or `high`.
    pub severity: String,
    pub path: String,
    pub line: u32,
}

impl From<v1::Violation> for ViolationView {
    fn from(v: v1::Violation) -> Self {
        ViolationView {
            rule: v.rule,
            severity: v.severity,
            path: v.path,
            line: v.line,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    /// `approved` or `rejected`.
    pub decision: ReviewDecision,
    /// The admin's account id, or `scanner`.
    pub reviewer: String,
    /// Why it was rejected; empty for an approval.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub decided_at: Option<String>,
}

impl TryFrom<v1::Review> for ReviewView {
    type Error = Error;

    fn try_from(r: v1::Review) -> Result<Self, Error> {
        Ok(ReviewView {
            decided_at: timestamp(r.decided_at.as_ref()),
            decision: word(r.decision, "review decision")?,
            reviewer: r.reviewer,
            reason: r.reason,
        })
    }
}

/// An execution of an agent version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionView {
    pub id: String,
    /// The agent's slug.
    pub agent: String,
    /// The version that runs (the highest published one when the request named none).
    pub version: String,
    /// `queued`, `running`, `succeeded`, `failed`, `timed_out` or `canceled`.
    pub status: ExecutionStatus,
    /// The inputs as given.
    pub inputs: serde_json::Value,
    /// What the agent returned (any JSON value, null included); present once it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// Why it failed: the agent's error message, `out of memory`, a timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
    /// The exit code of an agent process that ended without a result.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub exit_code: Option<i32>,
    /// The last progress the agent reported, a fraction from 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0, maximum = 1)]
    pub progress: Option<f64>,
    /// The message that came with the last progress report.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub progress_message: Option<String>,
    /// Times it was handed to a node (a node that died makes it run again).
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub finished_at: Option<String>,
    /// From start to finish, once it has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub duration_ms: Option<u64>,
    /// What running it costs; present on executions of paid agents only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub charge: Option<ChargeView>,
    /// How long each phase took; absent until a node claimed it (API.md §4.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub timings: Option<TimingsView>,
    /// The execution whose agent called this one with `ctx.call` (API.md §5.1); absent for an
    /// execution a user started.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub parent_id: Option<String>,
    /// The first execution of the call tree this one belongs to; absent for a root.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub root_id: Option<String>,
    /// The executions this one called, oldest first; present in `GET /v1/executions/{id}` when
    /// it called any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ChildView>,
}

/// An execution another one started with `ctx.call`, as its parent lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChildView {
    pub id: String,
    /// The agent called.
    pub agent: String,
    /// The version its dependency range resolved to.
    pub version: String,
    pub status: ExecutionStatus,
    /// Present when the called agent is paid: the child's own charge.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub charge: Option<ChargeView>,
}

impl TryFrom<v1::Child> for ChildView {
    type Error = Error;

    fn try_from(c: v1::Child) -> Result<Self, Error> {
        Ok(ChildView {
            status: word(c.status, "execution status")?,
            charge: c.charge.map(ChargeView::try_from).transpose()?,
            id: c.id,
            agent: c.agent_slug,
            version: c.version,
        })
    }
}

/// The phases of an execution in milliseconds, measured on the platform's clock. A field is
/// present once both of its ends are known: `queue_wait_ms` from the claim, `start_ms` once the
/// agent's code runs, `run_ms` once it ended (a run canceled or failed before the agent's code
/// started has no `start_ms` and no `run_ms`). When the platform retried the execution on another
/// node, they describe the final attempt and `queue_wait_ms` covers everything before it, so the
/// three add up to `finished_at - created_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimingsView {
    /// Created → claimed by an execution node.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub queue_wait_ms: Option<u64>,
    /// Claimed → the agent's code running: fetching the package, creating and starting its
    /// sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub start_ms: Option<u64>,
    /// The agent's code running → its outcome. Only this phase counts toward the agent's
    /// `timeout_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub run_ms: Option<u64>,
}

impl From<v1::Timings> for TimingsView {
    fn from(t: v1::Timings) -> Self {
        TimingsView {
            queue_wait_ms: t.queue_wait_ms,
            start_ms: t.start_ms,
            run_ms: t.run_ms,
        }
    }
}

impl TryFrom<v1::Execution> for ExecutionView {
    type Error = Error;

    fn try_from(e: v1::Execution) -> Result<Self, Error> {
        Ok(ExecutionView {
            inputs: stored_json(&e.inputs_json, "inputs_json", &e.id),
            output: e
                .output_json
                .as_deref()
                .map(|output| stored_json(output, "output_json", &e.id)),
            created_at: timestamp(e.created_at.as_ref()),
            started_at: timestamp(e.started_at.as_ref()),
            finished_at: timestamp(e.finished_at.as_ref()),
            status: word(e.status, "execution status")?,
            charge: e.charge.map(ChargeView::try_from).transpose()?,
            id: e.id,
            agent: e.agent_slug,
            version: e.version,
            error: e.error,
            exit_code: e.exit_code,
            progress: e.progress,
            progress_message: e.progress_message,
            attempts: e.attempts,
            duration_ms: e.duration_ms,
            timings: e.timings.map(TimingsView::from),
            parent_id: e.parent_id,
            root_id: e.root_id,
            children: e
                .children
                .into_iter()
                .map(ChildView::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The charge of a paid execution. Money is integer minor units (paise, cents).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChargeView {
    /// `authorized` while it runs; `captured` once it succeeded, `voided` otherwise.
    pub status: ChargeStatus,
    pub amount_minor: i64,
    /// ISO 4217 code, e.g. `INR`.
    pub currency: String,
    /// Who gets what; all zero until the charge is captured.
    pub splits: SplitsView,
}

impl TryFrom<v1::Charge> for ChargeView {
    type Error = Error;

    fn try_from(c: v1::Charge) -> Result<Self, Error> {
        Ok(ChargeView {
            splits: SplitsView::from(c.splits.unwrap_or_default()),
            status: word(c.status, "charge status")?,
            amount_minor: c.amount_minor,
            currency: c.currency,
        })
    }
}

/// A captured charge divided up, in the charge's currency; the parts add up to its amount.
#[derive(Debug, Serialize, ToSchema)]
pub struct SplitsView {
    /// The agent's developer.
    pub developer: i64,
    pub platform: i64,
    pub orchestrator: i64,
    /// The payment rail's fee.
    pub rail_fee: i64,
}

impl From<v1::Splits> for SplitsView {
    fn from(s: v1::Splits) -> Self {
        SplitsView {
            developer: s.developer,
            platform: s.platform,
            orchestrator: s.orchestrator,
            rail_fee: s.rail_fee,
        }
    }
}

/// The signed mandate of a paid execution. Verify `signature` over the decoded `payload` bytes
/// (not a re-encoding of the JSON) with the Ed25519 key of `kid` from
/// `GET /v1/billing/mandate-keys`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MandateView {
    /// The exact signed bytes, standard base64. They decode to a UTF-8 JSON object with
    /// `"type": "frameos.mandate.v1"`, `execution_id`, `amount_minor`, `currency`,
    /// `expires_at` and `nonce`.
    #[schema(format = Byte)]
    pub payload: String,
    /// The 64-byte Ed25519 signature, standard base64.
    #[schema(format = Byte)]
    pub signature: String,
    /// The id of the key that signed it.
    pub kid: String,
}

impl From<v1::Mandate> for MandateView {
    fn from(m: v1::Mandate) -> Self {
        MandateView {
            payload: STANDARD.encode(&m.payload),
            signature: STANDARD.encode(&m.signature),
            kid: m.kid,
        }
    }
}

impl TryFrom<v1::GetMandateResponse> for MandateView {
    type Error = Error;

    fn try_from(r: v1::GetMandateResponse) -> Result<Self, Error> {
        Ok(wrapped(r.mandate, "mandate")?.into())
    }
}

/// A public key that verifies mandates.
#[derive(Debug, Serialize, ToSchema)]
pub struct MandateKeyView {
    /// Matches the `kid` of the mandates it signed.
    pub kid: String,
    /// `Ed25519`.
    #[schema(example = "Ed25519")]
    pub alg: String,
    /// The 32 raw public key bytes, standard base64.
    #[schema(format = Byte)]
    pub public_key: String,
}

impl From<v1::MandateKey> for MandateKeyView {
    fn from(k: v1::MandateKey) -> Self {
        MandateKeyView {
            public_key: STANDARD.encode(&k.public_key),
            kid: k.kid,
            alg: k.alg,
        }
    }
}

/// Every key that verifies mandates; retired keys stay, so old mandates still verify.
#[derive(Debug, Serialize, ToSchema)]
pub struct MandateKeyList {
    pub keys: Vec<MandateKeyView>,
}

impl From<v1::ListMandateKeysResponse> for MandateKeyList {
    fn from(r: v1::ListMandateKeysResponse) -> Self {
        MandateKeyList {
            keys: r.keys.into_iter().map(MandateKeyView::from).collect(),
        }
    }
}

/// An account's balance in one currency, from the ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    pub account_id: String,
    /// ISO 4217 code, e.g. `INR`.
    pub currency: String,
    /// Credits minus debits over every ledger account of this account, in minor units.
    pub balance_minor: i64,
    /// The ledger entries behind it.
    pub entries: Vec<LedgerEntryView>,
}

impl TryFrom<v1::GetBalanceResponse> for BalanceView {
    type Error = Error;

    fn try_from(r: v1::GetBalanceResponse) -> Result<Self, Error> {
        Ok(wrapped(r.balance, "balance")?.into())
    }
}

impl From<v1::Balance> for BalanceView {
    fn from(b: v1::Balance) -> Self {
        BalanceView {
            entries: b.entries.into_iter().map(LedgerEntryView::from).collect(),
            account_id: b.account_id,
            currency: b.currency,
            balance_minor: b.balance_minor,
        }
    }
}

/// One side of a double-entry ledger transaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryView {
    /// The transaction; its debits and credits balance.
    pub transaction_id: String,
    /// The ledger account, e.g. `developer:<account id>`.
    pub account: String,
    /// `debit` or `credit`.
    pub direction: String,
    pub amount_minor: i64,
    pub currency: String,
    /// The execution the transaction is for.
    pub execution_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub created_at: Option<String>,
}

impl From<v1::LedgerEntry> for LedgerEntryView {
    fn from(e: v1::LedgerEntry) -> Self {
        LedgerEntryView {
            created_at: timestamp(e.created_at.as_ref()),
            transaction_id: e.transaction_id,
            account: e.account,
            direction: e.direction,
            amount_minor: e.amount_minor,
            currency: e.currency,
            execution_id: e.execution_id,
        }
    }
}

/// JSON the control plane stored after parsing it: unreadable, it is a bug, not bad input.
fn stored_json(text: &str, field: &str, execution: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|error| {
        tracing::warn!(%execution, field, %error, "unreadable JSON from the control plane");
        serde_json::Value::Null
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionList {
    pub items: Vec<ExecutionView>,
    /// Present when there are more; pass it back as `page_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_page_token: Option<String>,
}

impl TryFrom<v1::ListExecutionsResponse> for ExecutionList {
    type Error = Error;

    fn try_from(r: v1::ListExecutionsResponse) -> Result<Self, Error> {
        Ok(ExecutionList {
            items: r
                .items
                .into_iter()
                .map(ExecutionView::try_from)
                .collect::<Result<_, _>>()?,
            next_page_token: Some(r.next_page_token).filter(|t| !t.is_empty()),
        })
    }
}

/// One log line of an execution.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogLineView {
    /// Increases by one per line of the execution, from 1.
    pub seq: u64,
    /// `stdout` or `stderr`: the agent printed it; `system`: the platform wrote it (egress
    /// decisions, the log-limit marker, retries). Nothing an agent prints is ever `system`.
    pub stream: LogStream,
    /// The line, without its line break.
    pub line: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub ts: Option<String>,
}

impl TryFrom<v1::LogLine> for LogLineView {
    type Error = Error;

    fn try_from(l: v1::LogLine) -> Result<Self, Error> {
        Ok(LogLineView {
            ts: timestamp(l.ts.as_ref()),
            stream: word(l.stream, "log stream")?,
            seq: l.seq,
            line: l.line,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    pub items: Vec<LogLineView>,
    /// Present when there are more; pass it back as `after_seq`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_page_token: Option<String>,
}

impl TryFrom<v1::ListLogsResponse> for LogPage {
    type Error = Error;

    fn try_from(r: v1::ListLogsResponse) -> Result<Self, Error> {
        Ok(LogPage {
            items: r
                .items
                .into_iter()
                .map(LogLineView::try_from)
                .collect::<Result<_, _>>()?,
            next_page_token: Some(r.next_page_token).filter(|t| !t.is_empty()),
        })
    }
}

/// A progress report of a running agent (`ctx.progress(fraction, message)`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressView {
    /// From 0 to 1.
    #[schema(minimum = 0, maximum = 1)]
    pub fraction: f64,
    pub message: String,
}

impl From<v1::Progress> for ProgressView {
    fn from(p: v1::Progress) -> Self {
        ProgressView {
            fraction: p.fraction,
            message: p.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos })
    }

    fn version(review: Option<v1::Review>) -> v1::Version {
        v1::Version {
            agent_id: "ag_1".into(),
            agent_slug: "word-count".into(),
            version: "1.2.0".into(),
            status: VersionStatus::Rejected.to_proto(),
            sha256: "ab".repeat(32),
            size_bytes: 1234,
            scan: Some(v1::ScanReport {
                passed: false,
                violations: vec![v1::Violation {
                    rule: "node.child_process".into(),
                    severity: "high".into(),
                    path: "index.js".into(),
                    line: 2,
                }],
            }),
            manifest_json: r#"{"name":"word-count","runtime":"node"}"#.into(),
            review,
            created_at: at(1_700_000_000, 0),
            published_at: None,
            spot_check: false,
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(
            timestamp(at(0, 0).as_ref()).unwrap(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            timestamp(at(1_700_000_000, 123_000_000).as_ref()).unwrap(),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(timestamp(None), None);
    }

    #[test]
    fn versions_carry_the_parsed_manifest_and_omit_a_missing_review() {
        let json = serde_json::to_value(VersionView::try_from(version(None)).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({
                "agent": "word-count",
                "version": "1.2.0",
                "status": "rejected",
                "sha256": "ab".repeat(32),
                "size_bytes": 1234,
                "scan": {"passed": false, "violations": [
                    {"rule": "node.child_process", "severity": "high", "path": "index.js", "line": 2}
                ]},
                "manifest": {"name": "word-count", "runtime": "node"},
                "created_at": "2023-11-14T22:13:20Z",
            })
        );
        let review = v1::Review {
            decision: ReviewDecision::Rejected.to_proto(),
            reviewer: "scanner".into(),
            reason: "spawns processes".into(),
            decided_at: at(1_700_000_060, 0),
        };
        let json =
            serde_json::to_value(VersionView::try_from(version(Some(review))).unwrap()).unwrap();
        assert_eq!(
            json["review"],
            json!({"decision": "rejected", "reviewer": "scanner", "reason": "spawns processes", "decided_at": "2023-11-14T22:14:20Z"})
        );
    }

    #[test]
    fn agents_show_pricing_shapes_and_a_null_latest_version() {
        let mut agent = v1::Agent {
            id: "ag_1".into(),
            slug: "word-count".into(),
            name: "Word count".into(),
            description: String::new(),
            owner_id: "acc_1".into(),
            pricing: Some(Pricing::Free.into()),
            latest_version: None,
            created_at: at(1_700_000_000, 0),
            owner_name: "Ada".into(),
            ban: None,
        };
        let json = serde_json::to_value(AgentView::try_from(agent.clone()).unwrap()).unwrap();
        assert_eq!(json["pricing"], json!({"model": "free"}));
        assert_eq!(json["owner_name"], "Ada");
        assert_eq!(json["latest_version"], serde_json::Value::Null);
        assert_eq!(json["description"], "");
        assert!(json.get("ban").is_none(), "{json}");

        agent.pricing = Some(
            Pricing::PerExecution {
                price_minor: 500,
                currency: "INR".into(),
            }
            .into(),
        );
        agent.latest_version = Some(version(None));
        agent.ban = Some(v1::Ban {
            reason: "spam".into(),
            banned_at: at(1_700_000_100, 0),
        });
        let json = serde_json::to_value(AgentView::try_from(agent).unwrap()).unwrap();
        assert_eq!(
            json["ban"],
            json!({"reason": "spam", "banned_at": "2023-11-14T22:15:00Z"})
        );
        // Only an admin's view of a sampled version carries the mark.
        assert!(json["latest_version"].get("spot_check").is_none());
        assert_eq!(
            json["pricing"],
            json!({"model": "per_execution", "price_minor": 500, "currency": "INR"})
        );
        assert_eq!(json["latest_version"]["version"], "1.2.0");
    }

    #[test]
    fn an_empty_page_token_is_omitted() {
        let list = AgentList::try_from(v1::ListAgentsResponse::default()).unwrap();
        assert_eq!(serde_json::to_value(list).unwrap(), json!({"items": []}));
        let list = AgentList::try_from(v1::ListAgentsResponse {
            items: vec![],
            next_page_token: "p2".into(),
        })
        .unwrap();
        assert_eq!(serde_json::to_value(list).unwrap()["next_page_token"], "p2");
    }

    fn execution(status: &str) -> v1::Execution {
        v1::Execution {
            id: "ex_1".into(),
            agent_slug: "word-count".into(),
            version: "1.2.0".into(),
            status: status.parse::<ExecutionStatus>().unwrap().to_proto(),
            inputs_json: r#"{"text":"a b c"}"#.into(),
            attempts: 0,
            created_at: at(1_700_000_000, 0),
            account_id: "acc_1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_queued_execution_omits_what_has_not_happened() {
        let json =
            serde_json::to_value(ExecutionView::try_from(execution("queued")).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({
                "id": "ex_1",
                "agent": "word-count",
                "version": "1.2.0",
                "status": "queued",
                "inputs": {"text": "a b c"},
                "attempts": 0,
                "created_at": "2023-11-14T22:13:20Z",
            })
        );
    }

    #[test]
    fn an_ended_execution_shows_output_progress_and_duration() {
        let mut done = execution("succeeded");
        done.output_json = Some(r#"{"words":3}"#.into());
        done.progress = Some(0.75);
        done.progress_message = Some("counting".into());
        done.attempts = 1;
        done.started_at = at(1_700_000_001, 0);
        done.finished_at = at(1_700_000_003, 500_000_000);
        done.duration_ms = Some(2500);
        done.timings = Some(v1::Timings {
            queue_wait_ms: Some(1000),
            start_ms: Some(700),
            run_ms: Some(1800),
        });
        let json = serde_json::to_value(ExecutionView::try_from(done).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({
                "id": "ex_1",
                "agent": "word-count",
                "version": "1.2.0",
                "status": "succeeded",
                "inputs": {"text": "a b c"},
                "output": {"words": 3},
                "progress": 0.75,
                "progress_message": "counting",
                "attempts": 1,
                "created_at": "2023-11-14T22:13:20Z",
                "started_at": "2023-11-14T22:13:21Z",
                "finished_at": "2023-11-14T22:13:23.500Z",
                "duration_ms": 2500,
                "timings": {"queue_wait_ms": 1000, "start_ms": 700, "run_ms": 1800},
            })
        );

        let mut failed = execution("failed");
        failed.error = Some("process exited without a result".into());
        failed.exit_code = Some(3);
        let json = serde_json::to_value(ExecutionView::try_from(failed).unwrap()).unwrap();
        assert_eq!(json["error"], "process exited without a result");
        assert_eq!(json["exit_code"], 3);
        assert!(json.get("output").is_none(), "{json}");

        // An agent may return null: that is an output, unlike no output at all.
        let mut null = execution("succeeded");
        null.output_json = Some("null".into());
        let json = serde_json::to_value(ExecutionView::try_from(null).unwrap()).unwrap();
        assert_eq!(json.get("output"), Some(&serde_json::Value::Null));
    }

    #[test]
    fn a_running_execution_shows_only_the_phases_it_went_through() {
        let mut claimed = execution("running");
        claimed.timings = Some(v1::Timings {
            queue_wait_ms: Some(12),
            ..Default::default()
        });
        let json = serde_json::to_value(ExecutionView::try_from(claimed).unwrap()).unwrap();
        assert_eq!(json["timings"], json!({"queue_wait_ms": 12}));
        // Nothing known yet: no object at all, as for a queued execution.
        let json =
            serde_json::to_value(ExecutionView::try_from(execution("queued")).unwrap()).unwrap();
        assert!(json.get("timings").is_none(), "{json}");
    }

    fn charge(status: &str, splits: Option<v1::Splits>) -> v1::Charge {
        v1::Charge {
            status: status.parse::<ChargeStatus>().unwrap().to_proto(),
            amount_minor: 500,
            currency: "INR".into(),
            splits,
        }
    }

    #[test]
    fn paid_executions_carry_their_charge_and_free_ones_none() {
        let mut captured = execution("succeeded");
        captured.charge = Some(charge(
            "captured",
            Some(v1::Splits {
                developer: 400,
                platform: 60,
                orchestrator: 25,
                rail_fee: 15,
            }),
        ));
        let json = serde_json::to_value(ExecutionView::try_from(captured).unwrap()).unwrap();
        assert_eq!(
            json["charge"],
            json!({
                "status": "captured",
                "amount_minor": 500,
                "currency": "INR",
                "splits": {"developer": 400, "platform": 60, "orchestrator": 25, "rail_fee": 15},
            })
        );

        // Until captured there are no splits: they read as zeros, never as a missing object.
        for status in ["authorized", "voided"] {
            let mut pending = execution("running");
            pending.charge = Some(charge(status, None));
            let json = serde_json::to_value(ExecutionView::try_from(pending).unwrap()).unwrap();
            assert_eq!(
                json["charge"],
                json!({
                    "status": status,
                    "amount_minor": 500,
                    "currency": "INR",
                    "splits": {"developer": 0, "platform": 0, "orchestrator": 0, "rail_fee": 0},
                })
            );
        }

        let json =
            serde_json::to_value(ExecutionView::try_from(execution("succeeded")).unwrap()).unwrap();
        assert!(json.get("charge").is_none(), "{json}");
    }

    #[test]
    fn bytes_are_standard_base64_with_padding() {
        let mandate = MandateView::from(v1::Mandate {
            payload: br#"{"type":"frameos.mandate.v1"}"#.to_vec(),
            signature: vec![0xfb, 0xff, 0xfe, 0xfb],
            kid: "mk_1".into(),
            jws: "a.b.c".into(),
        });
        assert_eq!(
            serde_json::to_value(mandate).unwrap(),
            json!({
                "payload": "eyJ0eXBlIjoiZnJhbWVvcy5tYW5kYXRlLnYxIn0=",
                "signature": "+//++w==",
                "kid": "mk_1",
            })
        );
        let keys = MandateKeyList::from(v1::ListMandateKeysResponse {
            keys: vec![v1::MandateKey {
                kid: "mk_1".into(),
                alg: "Ed25519".into(),
                public_key: vec![0xfb, 0xff, 0xfe],
            }],
        });
        assert_eq!(
            serde_json::to_value(keys).unwrap(),
            json!({"keys": [{"kid": "mk_1", "alg": "Ed25519", "public_key": "+//+"}]})
        );
    }

    #[test]
    fn a_reply_without_its_words_is_an_internal_error() {
        let mut unspecified = execution("queued");
        unspecified.status = 0;
        let err = ExecutionView::try_from(unspecified).unwrap_err();
        assert_eq!(err.code, frameos_core::ErrorCode::Internal);
        let err = AccountView::try_from(v1::WhoAmIResponse { account: None }).unwrap_err();
        assert_eq!(err.code, frameos_core::ErrorCode::Internal);
    }

    #[test]
    fn log_lines_and_pages() {
        let line = v1::LogLine {
            seq: 7,
            stream: LogStream::Stderr.to_proto(),
            line: "warning: slow".into(),
            ts: at(1_700_000_000, 250_000_000),
        };
        let page = LogPage::try_from(v1::ListLogsResponse {
            items: vec![line],
            next_page_token: "7".into(),
        })
        .unwrap();
        assert_eq!(
            serde_json::to_value(page).unwrap(),
            json!({
                "items": [{"seq": 7, "stream": "stderr", "line": "warning: slow", "ts": "2023-11-14T22:13:20.250Z"}],
                "next_page_token": "7",
            })
        );
        let list = ExecutionList::try_from(v1::ListExecutionsResponse::default()).unwrap();
        assert_eq!(serde_json::to_value(list).unwrap(), json!({"items": []}));
    }
}
