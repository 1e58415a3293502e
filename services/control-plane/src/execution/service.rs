//! The `ExecutionService` gRPC endpoint.

use std::pin::Pin;

use frameos_core::slots::{KeyedSlots, Refused};
use frameos_core::{Error, ErrorCode, Role};
use frameos_proto::status::to_status;
use frameos_proto::v1::{self, execution_service_server::ExecutionService};
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::{Notify, mpsc};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::stream_token::StreamTokens;
use super::{Hub, Intake, create, query, watch};
use crate::accounts::auth;

pub struct Executions {
    db: DatabaseConnection,
    /// Writes accepted executions, several requests' in one statement.
    intake: Intake,
    hub: Hub,
    billing: crate::billing::Billing,
    /// Wakes the outbox relay when a job was committed.
    outbox: std::sync::Arc<Notify>,
    /// Open `WatchExecution` streams, by account.
    streams: KeyedSlots<String>,
    shutdown: CancellationToken,
    /// Owns the watcher tasks: the stop waits for them.
    tasks: TaskTracker,
    /// Issues and checks the stream tokens of `WatchExecution`.
    tokens: StreamTokens,
    /// What a `webhook_url` may point at.
    webhooks: crate::webhooks::Guard,
}

impl Executions {
    pub fn new(
        db: DatabaseConnection,
        hub: Hub,
        billing: crate::billing::Billing,
        outbox: std::sync::Arc<Notify>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> Self {
        Executions {
            intake: Intake::start(db.clone(), &tasks),
            db,
            hub,
            billing,
            outbox,
            streams: KeyedSlots::new(None, None),
            shutdown,
            tasks,
            tokens: StreamTokens::random(),
            webhooks: crate::webhooks::Guard::default(),
        }
    }

    /// What accepts executions, shared with the schedules' ticker.
    pub fn intake(&self) -> Intake {
        self.intake.clone()
    }

    /// Holds `webhook_url`s to `guard` (by default: no internal address at all).
    pub fn with_webhook_guard(mut self, guard: crate::webhooks::Guard) -> Self {
        self.webhooks = guard;
        self
    }

    /// Stream tokens with the key every replica shares (a random one per start without it).
    pub fn with_stream_tokens(mut self, tokens: StreamTokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Bounds the open `WatchExecution` streams per account and in total (unbounded without).
    pub fn with_stream_limits(mut self, limits: &crate::config::FairUseConfig) -> Self {
        let per_account = limits.max_streams_per_account;
        self.streams = KeyedSlots::new(
            (per_account > 0).then_some(per_account),
            Some(limits.max_event_streams),
        );
        self
    }
}

/// Why a stream was refused, as the caller should hear it.
fn stream_refused(account_id: &str, refused: Refused) -> Error {
    match refused {
        Refused::PerOwner { limit } => {
            tracing::info!(
                account_id,
                limit,
                "watch refused: account at its stream limit"
            );
            Error::new(
                ErrorCode::RateLimited,
                format!(
                    "this account has {limit} event streams open, the most it may; close one and retry"
                ),
            )
        }
        Refused::Total { limit } => {
            tracing::warn!(
                limit,
                "watch refused: the control plane holds all the streams it can"
            );
            Error::unavailable(format!(
                "too many event streams are open (at most {limit}); retry later"
            ))
        }
    }
}

fn reply<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(|e| to_status(&e))
}

type EventStream = Pin<Box<dyn tokio_stream::Stream<Item = watch::EventResult> + Send>>;

#[tonic::async_trait]
impl ExecutionService for Executions {
    async fn create_execution(
        &self,
        request: Request<v1::CreateExecutionRequest>,
    ) -> Result<Response<v1::CreateExecutionResponse>, Status> {
        // A child of the call's SERVER span, which continues the caller's trace.
        let span = tracing::info_span!("create_execution", trace_id = tracing::field::Empty);
        if let Some(trace_id) = frameos_telemetry::trace_id(&span) {
            span.record("trace_id", trace_id);
        }
        let result = async {
            let caller = auth::require(&request, Role::User)?;
            let (execution, created) = create::create(
                &self.db,
                &self.intake,
                &self.billing,
                &self.webhooks,
                &caller,
                request.get_ref(),
                create::Origin::Request,
            )
            .await?;
            if created {
                self.outbox.notify_one();
            }
            Ok(v1::CreateExecutionResponse {
                execution: Some(execution),
            })
        }
        .instrument(span)
        .await;
        reply(result)
    }

    async fn get_execution(
        &self,
        request: Request<v1::GetExecutionRequest>,
    ) -> Result<Response<v1::GetExecutionResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                let execution = query::view(&self.db, &caller, &request.get_ref().id).await?;
                Ok(v1::GetExecutionResponse {
                    execution: Some(execution),
                })
            }
            .await,
        )
    }

    async fn list_executions(
        &self,
        request: Request<v1::ListExecutionsRequest>,
    ) -> Result<Response<v1::ListExecutionsResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                query::list(&self.db, &caller, request.get_ref()).await
            }
            .await,
        )
    }

    async fn cancel_execution(
        &self,
        request: Request<v1::CancelExecutionRequest>,
    ) -> Result<Response<v1::CancelExecutionResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                let execution = query::cancel(
                    &self.db,
                    &self.hub,
                    &self.billing,
                    &caller,
                    &request.get_ref().id,
                )
                .await?;
                Ok(v1::CancelExecutionResponse {
                    execution: Some(execution),
                })
            }
            .await,
        )
    }

    async fn list_logs(
        &self,
        request: Request<v1::ListLogsRequest>,
    ) -> Result<Response<v1::ListLogsResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                let body = request.get_ref();
                query::owned(&self.db, &caller, &body.execution_id).await?;
                query::logs(&self.db, &body.execution_id, body.after_seq, body.page_size).await
            }
            .await,
        )
    }

    async fn get_mandate(
        &self,
        request: Request<v1::GetMandateRequest>,
    ) -> Result<Response<v1::GetMandateResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                let row = query::owned(&self.db, &caller, &request.get_ref().id).await?;
                let charge = crate::entity::charge::Entity::find_by_id(&row.id)
                    .one(&self.db)
                    .await
                    .map_err(crate::db::error)?
                    .ok_or_else(|| {
                        Error::not_found(format!(
                            "a mandate for execution {:?} (free agents have none)",
                            row.id
                        ))
                    })?;
                let signature = hex::decode(&charge.mandate_signature)
                    .map_err(|_| Error::internal("stored mandate signature is not hex"))?;
                Ok(v1::GetMandateResponse {
                    mandate: Some(v1::Mandate {
                        jws: self.billing.jws(charge.mandate_payload.as_bytes()),
                        payload: charge.mandate_payload.into_bytes(),
                        signature,
                        kid: charge.kid,
                    }),
                })
            }
            .await,
        )
    }

    async fn create_stream_token(
        &self,
        request: Request<v1::CreateStreamTokenRequest>,
    ) -> Result<Response<v1::CreateStreamTokenResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                let row =
                    query::owned(&self.db, &caller, &request.get_ref().execution_id).await?;
                let (token, expires_at) =
                    self.tokens
                        .issue(&row.id, &caller.account_id, chrono::Utc::now());
                // Never the token itself: it is a secret until it expires.
                tracing::info!(execution_id = %row.id, account_id = %caller.account_id, %expires_at, "stream token issued");
                Ok(v1::CreateStreamTokenResponse {
                    token,
                    expires_at: Some(crate::view::timestamp(expires_at)),
                })
            }
            .await,
        )
    }

    type WatchExecutionStream = EventStream;

    async fn watch_execution(
        &self,
        request: Request<v1::WatchExecutionRequest>,
    ) -> Result<Response<Self::WatchExecutionStream>, Status> {
        let watcher = watch::Watcher::of(&request, &self.tokens, &request.get_ref().id)
            .map_err(|e| to_status(&e))?;
        let account_id = watcher.account_id();
        // Before any further query: a flood of refused streams should cost as little as it can.
        // The slot is held by the watcher and freed when the stream ends or the client goes.
        let slot = self
            .streams
            .acquire(&account_id.to_string())
            .map_err(|refused| to_status(&stream_refused(account_id, refused)))?;
        let body = request.into_inner();
        let row = watcher
            .execution(&self.db, &body.id)
            .await
            .map_err(|e| to_status(&e))?;
        // Bounded: a slow client slows its watcher down, never the control plane.
        let (sender, receiver) = mpsc::channel(64);
        watch::spawn(
            &self.tasks,
            self.db.clone(),
            self.hub.clone(),
            watch::Watch {
                execution_id: row.id,
                after_seq: body.after_seq,
                slot,
            },
            sender,
            self.shutdown.clone(),
        );
        Ok(Response::new(Box::pin(
            ReceiverStream::new(receiver).map(|event| *event),
        )))
    }
}
