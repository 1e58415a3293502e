//! `POST /mcp` (API.md §5.4): the Model Context Protocol over streamable HTTP, served by the
//! official SDK (`rmcp`). Every published agent the caller may run is a tool named by its slug
//! with its version's `inputs` schema; `tools/call` runs it exactly as `POST executions` does
//! (the same key, billing, mandate and idempotency) and answers with its output. The gateway
//! decides nothing here either: each call is forwarded with the caller's key.

use std::sync::Arc;

use axum::http::request::Parts;
use frameos_core::{ErrorCode, ExecutionStatus};
use frameos_proto::ProtoEnum;
use frameos_proto::v1;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use tokio_util::sync::CancellationToken;

use crate::auth::{self, ApiKey};
use crate::control_plane::ControlPlane;

/// Tools per `tools/list` page: one page of the marketplace.
const PAGE_SIZE: u32 = 100;

/// The MCP service of `control_plane`, stateless (any gateway replica answers any request),
/// stopped by `shutdown`.
pub fn service(
    control_plane: ControlPlane,
    max_body_bytes: usize,
    shutdown: CancellationToken,
) -> StreamableHttpService<Marketplace, LocalSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        // Hosts are the deployment's business (ingress); keys, not hosts, are the boundary here.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(max_body_bytes)
        .with_cancellation_token(shutdown);
    StreamableHttpService::new(
        move || {
            Ok(Marketplace {
                control_plane: control_plane.clone(),
            })
        },
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

#[derive(Clone)]
pub struct Marketplace {
    control_plane: ControlPlane,
}

/// The caller's key from the HTTP request under this MCP request.
fn key(context: &RequestContext<RoleServer>) -> Result<Option<ApiKey>, ErrorData> {
    let Some(parts) = context.extensions.get::<Parts>() else {
        return Ok(None);
    };
    ApiKey::from_headers(&parts.headers)
        .map_err(|e| ErrorData::invalid_request(e.0.to_string(), None))
}

/// The control plane's answer in the words of the REST API (`code: message`): the caller's
/// mistake as an invalid request, the platform's own trouble as an internal error.
fn status_error(status: &tonic::Status) -> ErrorData {
    let error = frameos_proto::status::from_status(status);
    let message = format!("{}: {}", error.code, error.message);
    if matches!(error.code, ErrorCode::Internal | ErrorCode::Unavailable) {
        ErrorData::internal_error(message, None)
    } else {
        ErrorData::invalid_request(message, None)
    }
}

fn tool(agent: &v1::Agent) -> Option<Tool> {
    let version = agent.latest_version.as_ref()?;
    let manifest: serde_json::Value = serde_json::from_str(&version.manifest_json).ok()?;
    let schema = match manifest.get("inputs") {
        Some(serde_json::Value::Object(schema)) => schema.clone(),
        _ => serde_json::Map::new(),
    };
    let description = if agent.description.is_empty() {
        manifest["description"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    } else {
        agent.description.clone()
    };
    Some(Tool::new(agent.slug.clone(), description, Arc::new(schema)))
}

impl ServerHandler for Marketplace {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::default();
        info.capabilities = ServerCapabilities::builder().enable_tools().build();
        info
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let key = key(&context)?;
        let page = v1::ListAgentsRequest {
            page_size: PAGE_SIZE,
            page_token: request.and_then(|r| r.cursor).unwrap_or_default(),
            ..Default::default()
        };
        let reply = self
            .control_plane
            .agents()
            .list_agents(auth::request(page, key.as_ref()))
            .await
            .map_err(|s| status_error(&s))?
            .into_inner();
        let mut result =
            ListToolsResult::with_all_items(reply.items.iter().filter_map(tool).collect());
        result.next_cursor = Some(reply.next_page_token).filter(|t| !t.is_empty());
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let key = key(&context)?;
        let inputs = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let create = v1::CreateExecutionRequest {
            idempotency_key: idempotency_key(&context, &request.name, &inputs),
            agent_slug: request.name.to_string(),
            inputs_json: inputs.to_string(),
            ..Default::default()
        };
        let created = match self
            .control_plane
            .executions()
            .create_execution(auth::request(create, key.as_ref()))
            .await
        {
            Ok(reply) => reply.into_inner(),
            Err(status) => return Ok(failed(&status_error(&status).message).into()),
        };
        let id = created.execution.map(|e| e.id).unwrap_or_default();
        let watch = v1::WatchExecutionRequest {
            id: id.clone(),
            after_seq: u64::MAX,
        };
        let mut events = self
            .control_plane
            .executions()
            .watch_execution(auth::request(watch, key.as_ref()))
            .await
            .map_err(|s| status_error(&s))?
            .into_inner();
        while let Some(event) = events.message().await.map_err(|s| status_error(&s))? {
            let Some(v1::watch_execution_response::Event::Status(execution)) = event.event else {
                continue;
            };
            let status = ExecutionStatus::from_proto(execution.status)
                .map_err(|e| ErrorData::internal_error(e.message, None))?;
            if !status.is_terminal() {
                continue;
            }
            return Ok(match (status, execution.output_json) {
                (ExecutionStatus::Succeeded, Some(output)) => {
                    let output: serde_json::Value = serde_json::from_str(&output)
                        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                    CallToolResult::structured(serde_json::json!({
                        "execution_id": id, "output": output,
                    }))
                }
                (status, _) => failed(&format!(
                    "execution {id} {status}: {}",
                    execution.error.unwrap_or_default()
                )),
            }
            .into());
        }
        Err(ErrorData::internal_error(
            format!("the event stream of execution {id} ended before the execution did"),
            None,
        ))
    }
}

/// Idempotency by the JSON-RPC request id (API.md §5.4): a client that sends the same request
/// again (a retry after a lost answer) runs the agent once. Request ids restart with every
/// client session, and this server keeps no sessions, so the key also names the session when
/// the client sent one, and the tool and arguments: another call that reuses an id is another
/// execution, never a replay of someone else's request or an `idempotency_key_reused`.
fn idempotency_key(
    context: &RequestContext<RoleServer>,
    tool: &str,
    inputs: &serde_json::Value,
) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let session: String = context
        .extensions
        .get::<Parts>()
        .and_then(|parts| parts.headers.get("mcp-session-id"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .chars()
        .take(64)
        .collect();
    let call = Sha256::digest(format!("{tool}\0{inputs}").as_bytes());
    let call = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&call[..12]);
    format!("mcp:{session}:{}:{call}", context.id)
}

fn failed(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}
