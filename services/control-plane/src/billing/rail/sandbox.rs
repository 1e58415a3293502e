//! The built-in sandbox rail, whose records live in the database the way a processor keeps its
//! own: every call reads them, changes them and appends to the request log in one transaction,
//! so they outlive a crash of the control plane (which is what reconciliation needs), every
//! replica sees the same rail, and tests can look at (or plant holds in) what the "processor"
//! remembers.

use std::sync::Arc;

use chrono::Utc;
use frameos_billing::{
    Authorization, FeeSchedule, PaymentRail, RailError, SandboxRail, SandboxState,
};
use frameos_core::Error;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use tokio::sync::Mutex;

use crate::db;
use crate::entity::{sandbox_rail_authorization as record, sandbox_rail_call as call_log};

const STATE_ROW: &str = "state";

#[derive(Clone)]
pub struct Sandbox {
    fee: FeeSchedule,
    db: DatabaseConnection,
    /// One call of this process at a time; the row lock orders calls across processes.
    serial: Arc<Mutex<()>>,
}

impl Sandbox {
    pub async fn start(db: &DatabaseConnection, fee: FeeSchedule) -> Result<Sandbox, Error> {
        // The row every call locks; an existing one (the rail's memory) is kept.
        let empty = serde_json::to_string(&SandboxState::default())
            .map_err(|e| Error::internal(format!("sandbox rail state: {e}")))?;
        record::Entity::insert(record::ActiveModel {
            id: Set(STATE_ROW.to_string()),
            record: Set(empty),
            updated_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(record::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map_err(db::error)?;
        let rail = Sandbox {
            fee,
            db: db.clone(),
            serial: Arc::default(),
        };
        rail.load(db).await?;
        Ok(rail)
    }

    async fn load<C: ConnectionTrait>(&self, conn: &C) -> Result<SandboxRail, Error> {
        let row = record::Entity::find_by_id(STATE_ROW)
            .one(conn)
            .await
            .map_err(db::error)?
            .ok_or_else(|| Error::internal("the sandbox rail's records are missing"))?;
        let state: SandboxState = serde_json::from_str(&row.record)
            .map_err(|e| Error::internal(format!("sandbox rail state unreadable: {e}")))?;
        Ok(SandboxRail::with_state(self.fee, state))
    }

    /// Runs one rail call on the stored records and saves them with the call's log entry, in
    /// one transaction: the call happened at the rail exactly when this commits.
    async fn call(
        &self,
        op: impl FnOnce(&SandboxRail) -> Result<Authorization, RailError>,
    ) -> Result<Result<Authorization, RailError>, Error> {
        let _turn = self.serial.lock().await;
        let txn = self.db.begin().await.map_err(db::error)?;
        // Write first: a row lock on PostgreSQL, the write lock on SQLite, held to the commit.
        record::Entity::update_many()
            .col_expr(record::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(record::Column::Id.eq(STATE_ROW))
            .exec(&txn)
            .await
            .map_err(db::error)?;
        let sandbox = self.load(&txn).await?;
        let result = op(&sandbox);
        let saved = serde_json::to_string(&sandbox.state())
            .map_err(|e| Error::internal(format!("sandbox rail state: {e}")))?;
        record::Entity::update_many()
            .col_expr(record::Column::Record, Expr::value(saved))
            .filter(record::Column::Id.eq(STATE_ROW))
            .exec(&txn)
            .await
            .map_err(db::error)?;
        let calls = sandbox.take_journal();
        if !calls.is_empty() {
            call_log::Entity::insert_many(calls.into_iter().map(|c| call_log::ActiveModel {
                operation: Set(c.operation.as_str().to_string()),
                idempotency_key: Set(c.idempotency_key),
                authorization_id: Set(c.authorization_id),
                amount_minor: Set(c.amount_minor),
                outcome: Set(c.outcome.as_str().to_string()),
                created_at: Set(c.at),
                ..Default::default()
            }))
            .exec(&txn)
            .await
            .map_err(db::error)?;
        }
        txn.commit().await.map_err(db::error)?;
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

    /// Every hold the rail knows, as it knows them now.
    pub async fn list(&self) -> Result<Vec<Authorization>, Error> {
        let sandbox = self.load(&self.db).await?;
        PaymentRail::list(&sandbox)
            .map_err(|e| Error::unavailable(format!("the rail cannot list authorizations: {e}")))
    }
}
