use sea_orm::entity::prelude::*;

/// The latest claim of an execution: which registration of which node runs which attempt.
/// Live while `registration` is the node's current one and its heartbeats renew it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_claims")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub execution_id: String,
    pub attempt: i32,
    pub node_id: String,
    pub registration: String,
    pub claimed_at: DateTimeUtc,
    pub renewed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
