//! The `AccountService` gRPC endpoint: account creation by admins and `WhoAmI`.

use frameos_core::{Error, Role};
use frameos_proto::ProtoEnum;
use frameos_proto::status::to_status;
use frameos_proto::v1::{
    CreateAccountRequest, CreateAccountResponse, WhoAmIRequest, WhoAmIResponse,
    account_service_server::AccountService,
};
use sea_orm::{DatabaseConnection, EntityTrait};
use tonic::{Request, Response, Status};

use super::{auth, create};
use crate::entity::account;
use crate::{db, view};

pub struct Accounts {
    db: DatabaseConnection,
}

impl Accounts {
    pub fn new(db: DatabaseConnection) -> Self {
        Accounts { db }
    }
}

#[tonic::async_trait]
impl AccountService for Accounts {
    async fn create_account(
        &self,
        request: Request<CreateAccountRequest>,
    ) -> Result<Response<CreateAccountResponse>, Status> {
        let result = async {
            auth::require(&request, Role::Admin)?;
            let body = request.get_ref();
            let role = Role::from_proto(body.role)?;
            let (model, api_key) = create(&self.db, &body.name, role).await?;
            tracing::info!(account_id = %model.id, role = %role, "account created");
            Ok::<_, Error>(CreateAccountResponse {
                account: Some(view::account(&model)),
                api_key,
            })
        }
        .await;
        result.map(Response::new).map_err(|e| to_status(&e))
    }

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let result = async {
            let principal = auth::require(&request, Role::User)?;
            let model = account::Entity::find_by_id(&principal.account_id)
                .one(&self.db)
                .await
                .map_err(db::error)?
                .ok_or_else(|| Error::not_found("account"))?;
            Ok::<_, Error>(WhoAmIResponse {
                account: Some(view::account(&model)),
            })
        }
        .await;
        result.map(Response::new).map_err(|e| to_status(&e))
    }
}
