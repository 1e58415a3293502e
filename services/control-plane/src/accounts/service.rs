//! Accounts: creation by admins, `WhoAmI`, and the bootstrap admin.

use chrono::Utc;
use frameos_core::{Error, ErrorCode, Role};
use frameos_proto::status::to_status;
use frameos_proto::v1::{
    self, CreateAccountRequest, CreateAccountResponse, WhoAmIRequest,
    account_service_server::AccountService,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use tonic::{Request, Response, Status};

use super::auth::{self, Principal};
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

fn validate_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorCode::ValidationFailed,
            "name must be 1 to 128 printable characters",
        ));
    }
    Ok(name.to_string())
}

/// Creates an account with a fresh API key; returns the account and the key (shown once).
pub async fn create(
    db: &DatabaseConnection,
    name: &str,
    role: Role,
) -> Result<(account::Model, String), Error> {
    let name = validate_name(name)?;
    let key = auth::generate_key();
    let txn = db.begin().await.map_err(db::error)?;
    let model = account::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        name: Set(name.clone()),
        role: Set(role.as_str().to_string()),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        db::unique_or(
            e,
            ErrorCode::AccountExists,
            format!("an account named {name:?} exists already"),
        )
    })?;
    auth::store_key(&txn, &model.id, &key).await?;
    txn.commit().await.map_err(db::error)?;
    Ok((model, key))
}

/// Makes sure an admin can log in at start. With `key`, an admin account holding exactly that
/// key exists afterwards; without it, a first admin is created when there is none, and its
/// freshly generated key is returned so the caller can show it once.
pub async fn bootstrap_admin(
    db: &DatabaseConnection,
    key: Option<&str>,
) -> Result<Option<String>, Error> {
    let admin = account::Entity::find()
        .filter(account::Column::Role.eq(Role::Admin.as_str()))
        .one(db)
        .await
        .map_err(db::error)?;
    match (key, admin) {
        (Some(key), admin) => {
            let principal = auth_with(db, key).await?;
            if principal.is_some_and(|p| p.is_admin()) {
                return Ok(None);
            }
            let admin = match admin {
                Some(admin) => admin,
                None => account::ActiveModel {
                    id: Set(uuid::Uuid::now_v7().to_string()),
                    name: Set("admin".to_string()),
                    role: Set(Role::Admin.as_str().to_string()),
                    created_at: Set(Utc::now()),
                }
                .insert(db)
                .await
                .map_err(db::error)?,
            };
            auth::store_key(db, &admin.id, key).await?;
            tracing::info!(account_id = %admin.id, "bootstrap admin key installed");
            Ok(None)
        }
        (None, Some(_)) => Ok(None),
        (None, None) => {
            let (admin, key) = create(db, "admin", Role::Admin).await?;
            tracing::info!(account_id = %admin.id, "created the first admin account");
            Ok(Some(key))
        }
    }
}

async fn auth_with(db: &DatabaseConnection, key: &str) -> Result<Option<Principal>, Error> {
    let mut metadata = tonic::metadata::MetadataMap::new();
    let value = format!("Bearer {key}").parse().map_err(|_| {
        Error::new(
            ErrorCode::ValidationFailed,
            "the bootstrap key is not a valid header value",
        )
    })?;
    metadata.insert("authorization", value);
    match auth::authenticate(db, &metadata).await {
        Ok(p) => Ok(p),
        Err(e) if e.code == ErrorCode::Unauthenticated => Ok(None),
        Err(e) => Err(e),
    }
}

#[tonic::async_trait]
impl AccountService for Accounts {
    async fn create_account(
        &self,
        request: Request<CreateAccountRequest>,
    ) -> Result<Response<CreateAccountResponse>, Status> {
        let result = async {
            auth::require(&self.db, request.metadata(), Role::Admin).await?;
            let body = request.get_ref();
            let role: Role = body.role.parse()?;
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
    ) -> Result<Response<v1::Account>, Status> {
        let result = async {
            let principal = auth::require(&self.db, request.metadata(), Role::User).await?;
            let model = account::Entity::find_by_id(&principal.account_id)
                .one(&self.db)
                .await
                .map_err(db::error)?
                .ok_or_else(|| Error::not_found("account"))?;
            Ok::<_, Error>(view::account(&model))
        }
        .await;
        result.map(Response::new).map_err(|e| to_status(&e))
    }
}
