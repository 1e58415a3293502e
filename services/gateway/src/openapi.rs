//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations, plus
//! what every route shares ([`SharedResponses`]) and the server's limits ([`limits`]).

pub(crate) mod limits;
#[cfg(test)]
mod tests;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::{
    accounts, agents, billing, executions, ops, packages, reviews, schedules, versions, webhooks,
};
use crate::view;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "FrameOS API",
        description = "Publish, review, run and pay for agents. Errors are always \
            `{\"error\": {\"code\": \"snake_case_code\", \"message\": \"...\"}}`. \
            Every `/v1` and `/.well-known` route may answer 429 `rate_limited` with \
            `Retry-After` (seconds) to a \
            caller over its request rate (the limits are per account), and 503 `unavailable` \
            when the request outlasts the gateway's deadline or the control plane cannot be \
            reached."
    ),
    paths(
        accounts::create_account,
        accounts::me,
        crate::routes::keys::create_key, crate::routes::keys::list_keys, crate::routes::keys::revoke_key,
        agents::create_agent,
        agents::list_agents,
        agents::get_agent,
        agents::update_agent,
        crate::routes::secrets::put_secret, crate::routes::secrets::list_secrets, crate::routes::secrets::delete_secret,
        versions::publish_version,
        versions::list_versions,
        versions::list_releases,
        packages::list_files,
        packages::get_file,
        reviews::list_reviews,
        reviews::approve_version,
        reviews::reject_version,
        reviews::ban_agent,
        webhooks::get_webhook_secret,
        webhooks::rotate_webhook_secret,
        webhooks::list_webhook_deliveries,
        schedules::create_schedule,
        schedules::list_schedules,
        schedules::get_schedule,
        schedules::delete_schedule,
        executions::create_execution,
        executions::list_executions,
        executions::get_execution,
        executions::list_logs,
        executions::watch_execution,
        executions::create_stream_token,
        executions::cancel_execution,
        billing::get_balance,
        billing::list_mandate_keys,
        billing::get_mandate,
        billing::jwks,
        billing::list_earnings,
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
        agents::UpdateAgent,
        crate::routes::secrets::PutSecret,
        crate::routes::secrets::SecretView,
        crate::routes::secrets::SecretList,
        reviews::RejectVersion,
        reviews::BanAgent,
        reviews::BannedAgent,
        view::BanView,
        webhooks::WebhookSecret,
        webhooks::WebhookDeliveryView,
        webhooks::WebhookAttemptView,
        webhooks::WebhookDeliveryList,
        schedules::CreateSchedule,
        schedules::StandingMandateTerms,
        schedules::ScheduleView,
        schedules::StandingMandateView,
        schedules::ScheduleList,
        frameos_core::ScheduleStatus,
        executions::CreateExecution,
        executions::StreamTokenView,
        ops::Health,
        view::AccountView,
        view::NewAccountView,
        crate::pricing::Pricing,
        view::AgentView,
        packages::PackageFileView,
        packages::PackageFileList,
        packages::PackageFileContent,
        packages::ContentEncoding,
        billing::AgentEarningsView,
        billing::EarningsList,
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
        view::TimingsView,
        view::ChildView,
        view::SplitsView,
        view::MandateView,
        view::MandateKeyView,
        view::MandateKeyList,
        crate::routes::billing::MandateFormat,
        crate::routes::billing::MandateBody,
        crate::routes::billing::MandateJws,
        crate::routes::billing::Jwks,
        crate::routes::billing::Jwk,
        view::BalanceView,
        view::LedgerEntryView,
        SseEvent,
        frameos_core::Role,
        frameos_core::VersionStatus,
        frameos_core::ReviewDecision,
        frameos_core::ExecutionStatus,
        frameos_core::ChargeStatus,
        frameos_core::LogStream,
    )),
    modifiers(&BearerKey, &SharedResponses),
    tags(
        (name = "accounts", description = "Accounts and API keys"),
        (name = "agents", description = "Agents and the marketplace"),
        (name = "versions", description = "Immutable versions of an agent"),
        (name = "reviews", description = "The admin review: queues, spot checks and bans"),
        (name = "webhooks", description = "Signed webhooks when an execution ends"),
        (name = "executions", description = "Running agents: results, logs and live events"),
        (name = "schedules", description = "Agents run on a cron expression, paid under a standing mandate"),
        (name = "billing", description = "Balances, and the signed mandates of paid executions"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The document as served: [`ApiDoc`] with its response links in the spelling of the
/// specification (utoipa 5 writes a link's `operationId` as `operation_id`), built once.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        let responses = doc["paths"]
            .as_object_mut()
            .into_iter()
            .flat_map(|paths| paths.values_mut())
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|item| item.values_mut())
            .filter_map(|operation| operation.get_mut("responses"))
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|responses| responses.values_mut());
        for response in responses {
            let links = response
                .get_mut("links")
                .and_then(serde_json::Value::as_object_mut)
                .into_iter()
                .flat_map(|links| links.values_mut())
                .filter_map(serde_json::Value::as_object_mut);
            for link in links {
                for (from, to) in [
                    ("operation_id", "operationId"),
                    ("operation_ref", "operationRef"),
                    ("request_body", "requestBody"),
                ] {
                    if let Some(value) = link.remove(from) {
                        link.insert(to.to_string(), value);
                    }
                }
            }
        }
        doc
    })
}

/// One event of `GET /v1/executions/{id}/events` (Server-Sent Events): its name says what its
/// `data`, a JSON text, holds.
pub struct SseEvent;

impl utoipa::PartialSchema for SseEvent {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        let text = || ObjectBuilder::new().schema_type(Type::String);
        ObjectBuilder::new()
            .description(Some(
                "`log`: a `LogLineView`, the event's `id` is its `seq`; `progress`: a \
                 `ProgressView`; `status`: the `ExecutionView`; `error`: an `ErrorDetail`, and the \
                 stream ends; `end`: the execution has ended and the stream closes",
            ))
            .property(
                "event",
                text().enum_values(Some(["log", "progress", "status", "error", "end"])),
            )
            .required("event")
            .property("data", text().content_media_type("application/json"))
            .property("id", text())
            .property("retry", ObjectBuilder::new().schema_type(Type::Integer))
            .into()
    }
}

impl utoipa::ToSchema for SseEvent {}

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

/// Answers every route of the API shares, documented once as components and referenced from
/// each operation that does not document the status itself (a route's own description wins):
/// * 429 `rate_limited` (with `Retry-After`) and 503 `unavailable` on every `/v1` and
///   `/.well-known` route: the fair-use limits and the request deadline wrap the whole API;
/// * 401 `unauthenticated` and 403 `permission_denied` on every route that requires a key: the
///   key may be missing, unknown or revoked, and its scopes may not cover the operation;
/// * 400 `invalid_request` on every route with a body or parameters to decode, and 413
///   `payload_too_large` on every route with a body (the extractors answer them).
struct SharedResponses;

impl SharedResponses {
    const RATE_LIMITED: &'static str = "RateLimited";
    const UNAVAILABLE: &'static str = "Unavailable";
    const UNAUTHORIZED: &'static str = "Unauthorized";
    const FORBIDDEN: &'static str = "Forbidden";
    const BAD_REQUEST: &'static str = "BadRequest";
    const TOO_LARGE: &'static str = "PayloadTooLarge";
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let retry_after = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .description(Some(
                "Seconds to wait before retrying (sent when the request rate is over the limit)",
            ))
            .build();
        let shared = [
            (
                Self::RATE_LIMITED,
                error_response(
                    "`rate_limited`: the caller is over its request rate, or holds as many event \
                     streams as it may; retry later",
                )
                .header("Retry-After", retry_after),
            ),
            (
                Self::UNAVAILABLE,
                error_response(
                    "`unavailable`: the request outlasted the deadline, the gateway is saturated, \
                     or the control plane cannot be reached; retry later",
                ),
            ),
            (
                Self::UNAUTHORIZED,
                error_response(
                    "`unauthenticated`: a missing, malformed, unknown or revoked API key",
                ),
            ),
            (
                Self::FORBIDDEN,
                error_response(
                    "`permission_denied`: the account's role, or the key's scopes, do not allow this",
                ),
            ),
            (
                Self::BAD_REQUEST,
                error_response(
                    "`invalid_request`: a body, parameter or header that does not decode \
                     (malformed JSON, a missing field, a wrong type or Content-Type)",
                ),
            ),
            (
                Self::TOO_LARGE,
                error_response("`payload_too_large`: the body is over the gateway's limit"),
            ),
        ];
        for (name, response) in shared {
            components
                .responses
                .insert(name.to_string(), RefOr::T(response.build()));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                if path.starts_with("/v1/") || path.starts_with("/.well-known/") {
                    add_response(operation, "429", Self::RATE_LIMITED);
                    add_response(operation, "503", Self::UNAVAILABLE);
                }
                if requires_key(operation) {
                    add_response(operation, "401", Self::UNAUTHORIZED);
                    add_response(operation, "403", Self::FORBIDDEN);
                }
                let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                if operation.request_body.is_some() || has_parameters {
                    add_response(operation, "400", Self::BAD_REQUEST);
                }
                if operation.request_body.is_some() {
                    add_response(operation, "413", Self::TOO_LARGE);
                }
            }
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::response::ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

/// A route's own description of a status wins over the shared one.
fn add_response(operation: &mut Operation, status: &str, shared: &str) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(shared)));
}

/// Whether every security requirement of the operation names a scheme (no anonymous one).
fn requires_key(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|requirements| {
        !requirements.is_empty()
            && requirements
                .iter()
                .all(|r| r != &utoipa::openapi::security::SecurityRequirement::default())
    })
}
