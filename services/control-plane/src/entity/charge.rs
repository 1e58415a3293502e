use frameos_core::ChargeStatus;
use sea_orm::entity::prelude::*;

/// The purchase intent, its signed mandate and the rail authorization of one paid execution.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "charges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub execution_id: String,
    pub intent_id: String,
    pub mandate_id: String,
    pub payer_account: String,
    pub payee_account: String,
    pub amount_minor: i64,
    pub currency: String,
    pub kid: String,
    pub mandate_payload: String,
    pub mandate_signature: String,
    pub nonce: String,
    pub expires_at: DateTimeUtc,
    pub authorization_id: String,
    pub status: ChargeStatus,
    pub orchestrated: bool,
    /// A child's charge: the account of the calling agent's developer, who earns the
    /// orchestrator share.
    pub orchestrator_account: Option<String>,
    pub developer_minor: Option<i64>,
    pub orchestrator_minor: Option<i64>,
    pub platform_minor: Option<i64>,
    pub rail_fee_minor: Option<i64>,
    pub created_at: DateTimeUtc,
    pub settled_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The amount its stored mandate allows: a root's is the budget of its call tree (ADR 0040).
    /// `None` when the stored payload is unreadable.
    pub fn mandated_minor(&self) -> Option<i64> {
        serde_json::from_str::<serde_json::Value>(&self.mandate_payload)
            .ok()?
            .get("amount_minor")?
            .as_i64()
    }
}
