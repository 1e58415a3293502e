use frameos_core::{Runtime, VersionStatus};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub agent_id: String,
    pub version: String,
    pub status: VersionStatus,
    /// The manifest's runtime, for filtering the marketplace.
    pub runtime: Runtime,
    pub sha256: String,
    pub size_bytes: i64,
    pub package_key: String,
    /// Validated agent.json with defaults filled in (JSON text).
    pub manifest: String,
    /// The scanner's report (JSON text).
    pub scan: String,
    pub created_at: DateTimeUtc,
    pub published_at: Option<DateTimeUtc>,
    /// Published by the auto review mode and sampled for a spot check not yet done.
    pub spot_check: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::agent::Entity",
        from = "Column::AgentId",
        to = "super::agent::Column::Id"
    )]
    Agent,
}

impl Related<super::agent::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Agent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The stored agent.json (validated at upload, defaults filled in).
    pub fn manifest_json(&self) -> Result<serde_json::Value, frameos_core::Error> {
        serde_json::from_str(&self.manifest).map_err(|e| {
            frameos_core::Error::internal(format!("stored manifest of {} unreadable: {e}", self.id))
        })
    }
}
