//! The `WebhookService` gRPC endpoint: the caller's signing secret, and an execution's
//! deliveries with their attempts.

use std::collections::HashMap;

use frameos_core::{Error, Role};
use frameos_proto::status::to_status;
use frameos_proto::v1::{self, webhook_service_server::WebhookService};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use tonic::{Request, Response, Status};

use crate::accounts::auth;
use crate::entity::webhook_attempt;
use crate::view::timestamp;

pub struct Webhooks {
    db: DatabaseConnection,
    /// Seals and opens the accounts' secrets (FRAMEOS_SECRETS_KEY).
    keyring: Option<crate::secrets::Keyring>,
}

impl Webhooks {
    pub fn new(db: DatabaseConnection, keyring: Option<crate::secrets::Keyring>) -> Self {
        Webhooks { db, keyring }
    }

    async fn deliveries(
        &self,
        caller: &auth::Principal,
        execution_id: &str,
    ) -> Result<Vec<v1::WebhookDelivery>, Error> {
        // Its user or an admin; anyone else learns nothing (404).
        crate::execution::owned(&self.db, caller, execution_id).await?;
        let deliveries = super::of_execution(&self.db, execution_id).await?;
        let mut attempts: HashMap<String, Vec<v1::WebhookAttempt>> = HashMap::new();
        for a in webhook_attempt::Entity::find()
            .filter(
                webhook_attempt::Column::DeliveryId.is_in(deliveries.iter().map(|d| d.id.as_str())),
            )
            .order_by_asc(webhook_attempt::Column::Attempt)
            .all(&self.db)
            .await
            .map_err(crate::db::error)?
        {
            attempts
                .entry(a.delivery_id.clone())
                .or_default()
                .push(v1::WebhookAttempt {
                    attempt: u32::try_from(a.attempt).unwrap_or(0),
                    started_at: Some(timestamp(a.started_at)),
                    duration_ms: u32::try_from(a.duration_ms).unwrap_or(0),
                    status: a.status.and_then(|s| u32::try_from(s).ok()),
                    error: a.error.unwrap_or_default(),
                });
        }
        Ok(deliveries
            .into_iter()
            .map(|d| {
                let pending = !d.state.is_final();
                v1::WebhookDelivery {
                    attempts: attempts.remove(&d.id).unwrap_or_default(),
                    url: d.url,
                    state: d.state.to_string(),
                    next_attempt_at: pending.then(|| timestamp(d.next_attempt_at)),
                    delivered_at: d.delivered_at.map(timestamp),
                    id: d.id,
                }
            })
            .collect())
    }
}

#[tonic::async_trait]
impl WebhookService for Webhooks {
    async fn get_webhook_secret(
        &self,
        request: Request<v1::GetWebhookSecretRequest>,
    ) -> Result<Response<v1::GetWebhookSecretResponse>, Status> {
        let result = async {
            let caller = auth::require(&request, Role::User)?;
            let secret =
                super::secret::secret(&self.db, self.keyring.as_ref(), &caller.account_id).await?;
            Ok(v1::GetWebhookSecretResponse { secret })
        }
        .await;
        result.map(Response::new).map_err(|e: Error| to_status(&e))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<v1::RotateWebhookSecretRequest>,
    ) -> Result<Response<v1::RotateWebhookSecretResponse>, Status> {
        let result = async {
            let caller = auth::require(&request, Role::User)?;
            let secret = super::secret::replace_with_new(
                &self.db,
                self.keyring.as_ref(),
                &caller.account_id,
            )
            .await?;
            Ok(v1::RotateWebhookSecretResponse { secret })
        }
        .await;
        result.map(Response::new).map_err(|e: Error| to_status(&e))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<v1::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<v1::ListWebhookDeliveriesResponse>, Status> {
        let result = async {
            let caller = auth::require(&request, Role::User)?;
            let items = self
                .deliveries(&caller, &request.get_ref().execution_id)
                .await?;
            Ok(v1::ListWebhookDeliveriesResponse { items })
        }
        .await;
        result.map(Response::new).map_err(|e: Error| to_status(&e))
    }
}
