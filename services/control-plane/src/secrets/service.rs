//! The `SecretService` gRPC endpoint (API.md §5.3): who may do what with an agent's secrets.
//! Writing and deleting are the owner's alone; listing names, the owner's or an admin's.

use frameos_core::{Error, Role};
use frameos_proto::status::to_status;
use frameos_proto::v1::{self, secret_service_server::SecretService};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use super::keyring::Keyring;
use super::store;
use crate::accounts::auth;
use crate::agents::catalog;

pub struct Secrets {
    db: DatabaseConnection,
    keyring: Option<Keyring>,
}

impl Secrets {
    pub fn new(db: DatabaseConnection, keyring: Option<Keyring>) -> Self {
        Secrets { db, keyring }
    }
}

fn reply<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(|e| to_status(&e))
}

#[tonic::async_trait]
impl SecretService for Secrets {
    async fn put_secret(
        &self,
        request: Request<v1::PutSecretRequest>,
    ) -> Result<Response<v1::PutSecretResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::Developer)?;
                let body = request.get_ref();
                // Not even an admin writes another developer's secrets.
                let agent = catalog::owned(&self.db, &body.agent_slug, &caller, false).await?;
                let secret = store::put(
                    &self.db,
                    self.keyring.as_ref(),
                    &agent,
                    &body.name,
                    &body.value,
                )
                .await?;
                Ok(v1::PutSecretResponse {
                    secret: Some(secret),
                })
            }
            .await,
        )
    }

    async fn list_secrets(
        &self,
        request: Request<v1::ListSecretsRequest>,
    ) -> Result<Response<v1::ListSecretsResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::Developer)?;
                let slug = &request.get_ref().agent_slug;
                let agent = catalog::owned(&self.db, slug, &caller, true).await?;
                let items = store::list(&self.db, &agent.id).await?;
                Ok(v1::ListSecretsResponse { items })
            }
            .await,
        )
    }

    async fn delete_secret(
        &self,
        request: Request<v1::DeleteSecretRequest>,
    ) -> Result<Response<v1::DeleteSecretResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::Developer)?;
                let body = request.get_ref();
                let agent = catalog::owned(&self.db, &body.agent_slug, &caller, false).await?;
                store::delete(&self.db, &agent, &body.name).await?;
                Ok(v1::DeleteSecretResponse {})
            }
            .await,
        )
    }
}
