//! The `ApiKeyService` gRPC endpoint (API.md §4.5): an account's named keys, created with scopes
//! within its role and an optional expiry, listed without secrets, revoked.
//!
//! A key manages only keys no stronger than itself: it creates and revokes keys whose scopes it
//! holds (a leaked read-only key can neither mint a publishing key nor revoke one).

use chrono::{DateTime, Utc};
use frameos_core::{Error, ErrorCode, Role, Scopes};
use frameos_proto::status::to_status;
use frameos_proto::v1::{
    self, CreateApiKeyRequest, CreateApiKeyResponse, ListApiKeysRequest, ListApiKeysResponse,
    RevokeApiKeyRequest, RevokeApiKeyResponse, api_key_service_server::ApiKeyService,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use tonic::{Request, Response, Status};

use super::KeyCache;
use super::auth::{self, Principal};
use super::keys::{self, NewKey};
use crate::entity::api_key;
use crate::{db, view};

/// Keys an account may hold at once (revoked ones do not count).
pub const MAX_KEYS_PER_ACCOUNT: u64 = 100;

pub struct ApiKeys {
    db: DatabaseConnection,
    /// The auth layer's: a key revoked here is forgotten there at once.
    cache: KeyCache,
}

impl ApiKeys {
    pub fn new(db: DatabaseConnection, cache: KeyCache) -> Self {
        ApiKeys { db, cache }
    }

    async fn create(
        &self,
        principal: &Principal,
        body: &CreateApiKeyRequest,
    ) -> Result<CreateApiKeyResponse, Error> {
        let name = super::validate_name(&body.name)?;
        let allowed = Scopes::of_role(principal.role);
        let requested = frameos_proto::scope::from_wire(&body.scopes)?;
        let scopes = if requested.is_empty() {
            allowed
        } else {
            requested
        };
        if !allowed.covers(scopes) {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                format!(
                    "a {} account's keys can have at most the scopes {allowed}; {} is beyond its role",
                    principal.role,
                    allowed.missing(scopes)
                ),
            ));
        }
        if !principal.scopes.covers(scopes) {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                format!(
                    "this API key lacks the scope {}, so it cannot create a key that has it",
                    principal.scopes.missing(scopes)
                ),
            ));
        }
        let expires_at = match &body.expires_at {
            Some(t) => Some(future(t)?),
            None => None,
        };
        let held = api_key::Entity::find()
            .filter(api_key::Column::AccountId.eq(&principal.account_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .count(&self.db)
            .await
            .map_err(db::error)?;
        if held >= MAX_KEYS_PER_ACCOUNT {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!(
                    "the account holds {MAX_KEYS_PER_ACCOUNT} API keys already; revoke one first"
                ),
            ));
        }
        let secret = keys::generate();
        let new = NewKey {
            name,
            scopes: Some(scopes),
            expires_at,
        };
        let row = keys::store(&self.db, &principal.account_id, &secret, new).await?;
        tracing::info!(account_id = %principal.account_id, key_id = %row.id, %scopes, "api key created");
        Ok(CreateApiKeyResponse {
            key: Some(key_view(&row, principal.role)?),
            api_key: secret,
        })
    }

    async fn list(&self, principal: &Principal) -> Result<ListApiKeysResponse, Error> {
        let rows = api_key::Entity::find()
            .filter(api_key::Column::AccountId.eq(&principal.account_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .order_by_asc(api_key::Column::CreatedAt)
            .order_by_asc(api_key::Column::Id)
            .all(&self.db)
            .await
            .map_err(db::error)?;
        let keys = rows
            .iter()
            .map(|row| key_view(row, principal.role))
            .collect::<Result<_, _>>()?;
        Ok(ListApiKeysResponse { keys })
    }

    async fn revoke(&self, principal: &Principal, id: &str) -> Result<(), Error> {
        let row = api_key::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db::error)?
            .filter(|r| r.account_id == principal.account_id && r.revoked_at.is_none())
            .ok_or_else(|| Error::not_found("API key"))?;
        let target = keys::scopes_of(&row, principal.role)?;
        if !principal.scopes.covers(target) {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                format!(
                    "this API key lacks the scope {}, so it cannot revoke a key that has it",
                    principal.scopes.missing(target)
                ),
            ));
        }
        let revoked = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(api_key::Column::Id.eq(&row.id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(db::error)?
            .rows_affected;
        self.cache.evict(&row.key_hash);
        if revoked == 0 {
            // Revoked by a concurrent call in between.
            return Err(Error::not_found("API key"));
        }
        tracing::info!(account_id = %principal.account_id, key_id = %row.id, "api key revoked");
        Ok(())
    }
}

/// A requested expiry, which must lie in the future.
fn future(t: &prost_types::Timestamp) -> Result<DateTime<Utc>, Error> {
    let at = u32::try_from(t.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
        .ok_or_else(|| Error::new(ErrorCode::ValidationFailed, "expires_at is out of range"))?;
    if at <= Utc::now() {
        return Err(Error::new(
            ErrorCode::ValidationFailed,
            "expires_at must be in the future",
        ));
    }
    Ok(at)
}

/// A key as its owner sees it: never the secret.
fn key_view(row: &api_key::Model, role: Role) -> Result<v1::ApiKey, Error> {
    Ok(v1::ApiKey {
        id: row.id.clone(),
        name: row.name.clone(),
        scopes: frameos_proto::scope::to_wire(keys::scopes_of(row, role)?),
        created_at: Some(view::timestamp(row.created_at)),
        last_used_at: row.last_used_at.map(view::timestamp),
        expires_at: row.expires_at.map(view::timestamp),
    })
}

#[tonic::async_trait]
impl ApiKeyService for ApiKeys {
    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let result = async {
            let principal = auth::require(&request, Role::User)?;
            self.create(&principal, request.get_ref()).await
        }
        .await;
        result.map(Response::new).map_err(|e| to_status(&e))
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        let result = async {
            let principal = auth::require(&request, Role::User)?;
            self.list(&principal).await
        }
        .await;
        result.map(Response::new).map_err(|e| to_status(&e))
    }

    async fn revoke_api_key(
        &self,
        request: Request<RevokeApiKeyRequest>,
    ) -> Result<Response<RevokeApiKeyResponse>, Status> {
        let result = async {
            let principal = auth::require(&request, Role::User)?;
            self.revoke(&principal, &request.get_ref().id).await
        }
        .await;
        result
            .map(|()| Response::new(RevokeApiKeyResponse {}))
            .map_err(|e| to_status(&e))
    }
}
