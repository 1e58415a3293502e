use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// Public key id: the first 16 hex digits of the key's SHA-256.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    /// Hex SHA-256 of the whole key. The key itself is never stored.
    pub key_hash: String,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// The owner's name for the key (`default` for keys made with their account).
    pub name: String,
    /// Comma-separated scope names; None: every scope of the account's role.
    pub scopes: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    /// Written at most once a minute per key.
    pub last_used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
