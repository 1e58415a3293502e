//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{accounts, agents, billing, executions, ops, reviews, versions};
use crate::view;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "FrameOS API",
        description = "Publish, review, run and pay for agents. Errors are always \
            `{\"error\": {\"code\": \"snake_case_code\", \"message\": \"...\"}}`. \
            Every `/v1` route may answer 429 `rate_limited` with `Retry-After` (seconds) to a \
            caller over its request rate; the limits are per account."
    ),
    paths(
        accounts::create_account,
        accounts::me,
        agents::create_agent,
        agents::list_agents,
        agents::get_agent,
        versions::publish_version,
        versions::list_versions,
        reviews::list_reviews,
        reviews::approve_version,
        reviews::reject_version,
        executions::create_execution,
        executions::list_executions,
        executions::get_execution,
        executions::list_logs,
        executions::watch_execution,
        executions::cancel_execution,
        billing::get_balance,
        billing::list_mandate_keys,
        billing::get_mandate,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        accounts::CreateAccount,
        agents::CreateAgent,
        reviews::RejectVersion,
        executions::CreateExecution,
        ops::Health,
        view::AccountView,
        view::NewAccountView,
        crate::pricing::Pricing,
        view::AgentView,
        view::AgentList,
        view::VersionView,
        view::VersionList,
        view::ScanView,
        view::ViolationView,
        view::ReviewView,
        view::ExecutionView,
        view::ExecutionList,
        view::LogLineView,
        view::LogPage,
        view::ProgressView,
        view::ChargeView,
        view::SplitsView,
        view::MandateView,
        view::MandateKeyView,
        view::MandateKeyList,
        view::BalanceView,
        view::LedgerEntryView,
        frameos_core::Role,
        frameos_core::VersionStatus,
        frameos_core::ReviewDecision,
        frameos_core::ExecutionStatus,
        frameos_core::ChargeStatus,
        frameos_core::LogStream,
    )),
    modifiers(&BearerKey),
    tags(
        (name = "accounts", description = "Accounts and API keys"),
        (name = "agents", description = "Agents and the marketplace"),
        (name = "versions", description = "Immutable versions of an agent"),
        (name = "reviews", description = "The admin review"),
        (name = "executions", description = "Running agents: results, logs and live events"),
        (name = "billing", description = "Balances, and the signed mandates of paid executions"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// `Authorization: Bearer <api key>`, referenced as `api_key` by the paths that need it.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
