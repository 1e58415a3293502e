//! The configured payment rail. Today that is the built-in sandbox, whose records are saved in
//! the database after every call, the way a processor keeps its own: they outlive a crash of
//! the control plane, which is what reconciliation needs.

use std::sync::Arc;

use chrono::Utc;
use frameos_billing::{
    Authorization, FeeSchedule, PaymentRail, RailError, SandboxRail, SandboxState,
};
use frameos_core::Error;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use tokio::sync::Mutex;

use crate::db;
use crate::entity::sandbox_rail_authorization as record;

const STATE_ROW: &str = "state";

#[derive(Clone)]
pub struct Rail {
    sandbox: SandboxRail,
    db: DatabaseConnection,
    /// One call (and its save) at a time, so a later snapshot is never overwritten by an
    /// earlier one.
    serial: Arc<Mutex<()>>,
}

impl Rail {
    pub async fn sandbox(db: &DatabaseConnection, fee: FeeSchedule) -> Result<Rail, Error> {
        let saved = record::Entity::find_by_id(STATE_ROW)
            .one(db)
            .await
            .map_err(db::error)?;
        let state: SandboxState = match saved {
            Some(row) => serde_json::from_str(&row.record)
                .map_err(|e| Error::internal(format!("sandbox rail state unreadable: {e}")))?,
            None => SandboxState::default(),
        };
        Ok(Rail {
            sandbox: SandboxRail::with_state(fee, state),
            db: db.clone(),
            serial: Arc::default(),
        })
    }

    async fn save(&self) -> Result<(), Error> {
        let record = serde_json::to_string(&self.sandbox.state())
            .map_err(|e| Error::internal(format!("sandbox rail state: {e}")))?;
        record::Entity::insert(record::ActiveModel {
            id: Set(STATE_ROW.to_string()),
            record: Set(record),
            updated_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(record::Column::Id)
                .update_columns([record::Column::Record, record::Column::UpdatedAt])
                .to_owned(),
        )
        .exec(&self.db)
        .await
        .map_err(db::error)?;
        Ok(())
    }

    /// Runs one rail call and saves the rail's records, whatever it answered.
    async fn call(
        &self,
        op: impl FnOnce(&SandboxRail) -> Result<Authorization, RailError>,
    ) -> Result<Result<Authorization, RailError>, Error> {
        let _turn = self.serial.lock().await;
        let result = op(&self.sandbox);
        self.save().await?;
        Ok(result)
    }

    pub async fn authorize(
        &self,
        key: &str,
        payer: &str,
        amount_minor: i64,
        currency: &str,
    ) -> Result<Result<Authorization, RailError>, Error> {
        self.call(|r| r.authorize(key, payer, amount_minor, currency))
            .await
    }

    pub async fn capture(
        &self,
        id: &str,
        key: &str,
    ) -> Result<Result<Authorization, RailError>, Error> {
        self.call(|r| r.capture(id, key)).await
    }

    pub async fn void(
        &self,
        id: &str,
        key: &str,
    ) -> Result<Result<Authorization, RailError>, Error> {
        self.call(|r| r.void(id, key)).await
    }

    pub fn list(&self) -> Result<Vec<Authorization>, RailError> {
        PaymentRail::list(&self.sandbox)
    }
}
