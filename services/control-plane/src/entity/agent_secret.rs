use sea_orm::entity::prelude::*;

/// One secret of an agent, sealed (ADR 0045). The value is never stored in clear; `Debug`
/// shows the sealed bytes only, which say nothing without the key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_secrets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub agent_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The key of FRAMEOS_SECRETS_KEY that sealed it.
    pub key_id: String,
    pub nonce: Vec<u8>,
    /// Sealed value and tag.
    pub ciphertext: Vec<u8>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
