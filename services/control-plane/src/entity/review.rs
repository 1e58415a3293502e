use frameos_core::ReviewDecision;
use sea_orm::entity::prelude::*;

/// One review decision; append-only, so the history of a version is kept.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reviews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub version_id: String,
    pub decision: ReviewDecision,
    /// The admin's account id, [`SCANNER`] or [`AUTO`].
    pub reviewer: String,
    pub reason: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

pub const SCANNER: &str = "scanner";
/// The reviewer of a version the auto review mode published (API.md §5.2).
pub const AUTO: &str = "auto";
