//! The gRPC connection to the control plane, which owns every decision and all the data.

use std::time::Duration;

use frameos_core::ErrorCode;
use frameos_proto::v1::WhoAmIRequest;
use frameos_proto::v1::account_service_client::AccountServiceClient;
use frameos_proto::v1::agent_service_client::AgentServiceClient;
use frameos_proto::v1::api_key_service_client::ApiKeyServiceClient;
use frameos_proto::v1::billing_service_client::BillingServiceClient;
use frameos_proto::v1::execution_service_client::ExecutionServiceClient;
use frameos_proto::v1::schedule_service_client::ScheduleServiceClient;
use frameos_proto::v1::secret_service_client::SecretServiceClient;
use frameos_proto::v1::webhook_service_client::WebhookServiceClient;
use frameos_telemetry::grpc::TracedClient;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::auth::{self, ApiKey};
use crate::error::ApiError;

/// A channel with a CLIENT span per call, its trace context in the call's metadata.
pub type Traced = TracedClient<Channel>;

fn traced(channel: &Channel) -> Traced {
    TracedClient::client(channel.clone())
}

/// Room for the protobuf envelope around a package that is exactly at the limit.
const ENVELOPE_BYTES: usize = 64 * 1024;
/// Replies hold manifests; a long version list can outgrow tonic's 4 MiB default.
const MAX_REPLY_BYTES: usize = 32 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct ControlPlane {
    channel: Channel,
    /// A connection of its own for long-lived event streams: a stream whose client reads slowly
    /// holds HTTP/2 flow-control window, and on the shared connection enough of them would
    /// stall every other call.
    stream_channel: Channel,
    max_package_message: usize,
}

impl ControlPlane {
    /// A channel that connects on first use, so the gateway starts (and answers `/healthz`)
    /// while the control plane is still down; TLS for an `https://` URL (files checked now).
    pub fn connect_lazy(
        tls: &frameos_tls::ClientTlsConfig,
        url: &str,
        call_timeout: Duration,
        max_package_bytes: u64,
    ) -> Result<ControlPlane, frameos_tls::Error> {
        // The call timeout ends with the response head, so it bounds only the start of a stream.
        let endpoint = tls
            .endpoint(url)?
            .timeout(call_timeout)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        let channel = endpoint.connect_lazy();
        let stream_channel = endpoint.connect_lazy();
        let max_package_message = usize::try_from(max_package_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(ENVELOPE_BYTES);
        Ok(ControlPlane {
            channel,
            stream_channel,
            max_package_message,
        })
    }

    pub fn accounts(&self) -> AccountServiceClient<Traced> {
        AccountServiceClient::new(traced(&self.channel)).max_decoding_message_size(MAX_REPLY_BYTES)
    }

    /// The caller's own API keys (API.md §4.5).
    pub fn api_keys(&self) -> ApiKeyServiceClient<Traced> {
        ApiKeyServiceClient::new(traced(&self.channel))
    }

    pub fn agents(&self) -> AgentServiceClient<Traced> {
        AgentServiceClient::new(traced(&self.channel))
            .max_decoding_message_size(MAX_REPLY_BYTES)
            .max_encoding_message_size(self.max_package_message)
    }

    /// Executions: their inputs and outputs are whatever JSON the agent takes and returns.
    pub fn executions(&self) -> ExecutionServiceClient<Traced> {
        ExecutionServiceClient::new(traced(&self.channel))
            .max_decoding_message_size(MAX_REPLY_BYTES)
    }

    /// An agent's secrets (API.md §5.3): write-only values, listed by name.
    pub fn secrets(&self) -> SecretServiceClient<Traced> {
        SecretServiceClient::new(traced(&self.channel))
    }

    /// Webhooks (API.md §5.3): the signing secret and an execution's deliveries.
    pub fn webhooks(&self) -> WebhookServiceClient<Traced> {
        WebhookServiceClient::new(traced(&self.channel))
    }

    /// Schedules (API.md §5.3): agents run on a cron expression; a listing holds every
    /// schedule's inputs, which can add up.
    pub fn schedules(&self) -> ScheduleServiceClient<Traced> {
        ScheduleServiceClient::new(traced(&self.channel)).max_decoding_message_size(MAX_REPLY_BYTES)
    }

    /// Mandate keys and balances; a balance lists its ledger entries, which can add up.
    pub fn billing(&self) -> BillingServiceClient<Traced> {
        BillingServiceClient::new(traced(&self.channel)).max_decoding_message_size(MAX_REPLY_BYTES)
    }

    /// `WatchExecution`, on the connection reserved for streams.
    pub fn execution_events(&self) -> ExecutionServiceClient<Traced> {
        ExecutionServiceClient::new(traced(&self.stream_channel))
            .max_decoding_message_size(MAX_REPLY_BYTES)
    }

    /// Ready when the control plane's health service says SERVING within `within`.
    pub async fn check_ready(&self, within: Duration) -> Result<(), ApiError> {
        let mut health = HealthClient::new(self.channel.clone());
        let check = health.check(HealthCheckRequest {
            service: String::new(),
        });
        match tokio::time::timeout(within, check).await {
            Ok(Ok(reply)) if reply.get_ref().status == ServingStatus::Serving as i32 => Ok(()),
            Ok(Ok(_)) => Err(unavailable("the control plane reports it is not serving")),
            Ok(Err(status)) => Err(unavailable(&format!(
                "the control plane is unreachable: {}{}",
                status.message(),
                root_cause(&status)
            ))),
            Err(_) => Err(unavailable("the control plane did not answer in time")),
        }
    }

    /// `error` about a request body, unless the key itself is invalid: a caller without a valid
    /// key learns that first (401), as it would if the body had been fine.
    pub async fn unless_unauthenticated(&self, key: &ApiKey, error: ApiError) -> ApiError {
        let probe = auth::request(WhoAmIRequest {}, Some(key));
        match self.accounts().who_am_i(probe).await {
            Err(status) => {
                let auth_error = ApiError::from(status);
                if auth_error.code() == ErrorCode::Unauthenticated {
                    auth_error
                } else {
                    error
                }
            }
            Ok(_) => error,
        }
    }
}

/// What lies under a transport error (`: invalid peer certificate: UnknownIssuer`), which the
/// status message alone ("transport error") does not say; empty for a status the server sent.
fn root_cause(status: &tonic::Status) -> String {
    let mut cause = std::error::Error::source(status);
    let mut last = None;
    while let Some(error) = cause {
        last = Some(error);
        cause = error.source();
    }
    last.map(|error| format!(": {error}")).unwrap_or_default()
}

fn unavailable(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, message)
}
