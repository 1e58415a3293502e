use frameos_core::PricingModel;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub owner_id: String,
    pub pricing_model: PricingModel,
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When an admin banned it; `None` while it is not banned.
    pub banned_at: Option<DateTimeUtc>,
    /// Why, for the owner.
    pub ban_reason: Option<String>,
    /// The admin who banned it.
    pub banned_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
