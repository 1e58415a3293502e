use sea_orm::entity::prelude::*;

/// One request the sandbox rail received, as a processor's request log keeps it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sandbox_rail_calls")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub operation: String,
    pub idempotency_key: String,
    pub authorization_id: Option<String>,
    pub amount_minor: Option<i64>,
    pub outcome: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
