//! The configured payment rail (`FRAMEOS_RAIL`): the built-in sandbox, whose records live in
//! the database, or Stripe. Every call answers `Ok(Err(_))` for what the rail refused and
//! `Err(_)` only for a failure of our own (the sandbox's database).

mod sandbox;
mod stripe;

use frameos_billing::{Authorization, FeeSchedule, RailError};
use frameos_core::{Error, ErrorCode};
use sea_orm::DatabaseConnection;

pub use stripe::{StripeRail, StripeSettings};

use super::config::{BillingConfig, RailKind};

/// Who pays, as each rail needs to know them.
#[derive(Clone, Copy, Debug)]
pub struct Payer<'a> {
    /// The payer's account id.
    pub account: &'a str,
    /// The payer's instrument at the rail (the sandbox reads test payer ids from it).
    pub reference: &'a str,
}

#[derive(Clone)]
pub enum Rail {
    Sandbox(sandbox::Sandbox),
    Stripe(StripeRail),
}

impl Rail {
    /// The rail `config` names; a Stripe rail with missing or unusable settings is refused here,
    /// at start, rather than at the first charge.
    pub async fn start(
        db: &DatabaseConnection,
        config: &BillingConfig,
        fee: FeeSchedule,
    ) -> Result<Rail, Error> {
        match config.rail {
            RailKind::Sandbox => Ok(Rail::Sandbox(sandbox::Sandbox::start(db, fee).await?)),
            RailKind::Stripe => {
                let settings = config
                    .stripe()
                    .map_err(|e| Error::new(ErrorCode::InvalidRequest, e))?;
                let rail = StripeRail::new(settings, fee)
                    .map_err(|e| Error::new(ErrorCode::InvalidRequest, e.to_string()))?;
                Ok(Rail::Stripe(rail))
            }
        }
    }

    pub async fn authorize(
        &self,
        key: &str,
        payer: Payer<'_>,
        amount_minor: i64,
        currency: &str,
    ) -> Result<Result<Authorization, RailError>, Error> {
        match self {
            Rail::Sandbox(rail) => {
                rail.authorize(key, payer.reference, amount_minor, currency)
                    .await
            }
            Rail::Stripe(rail) => Ok(rail
                .authorize(key, payer.account, amount_minor, currency)
                .await),
        }
    }

    pub async fn capture(
        &self,
        id: &str,
        key: &str,
    ) -> Result<Result<Authorization, RailError>, Error> {
        match self {
            Rail::Sandbox(rail) => rail.capture(id, key).await,
            Rail::Stripe(rail) => Ok(rail.capture(id, key).await),
        }
    }

    pub async fn void(
        &self,
        id: &str,
        key: &str,
    ) -> Result<Result<Authorization, RailError>, Error> {
        match self {
            Rail::Sandbox(rail) => rail.void(id, key).await,
            Rail::Stripe(rail) => Ok(rail.void(id, key).await),
        }
    }

    /// Every hold the rail knows, as it knows them now (Stripe: those that can still be open,
    /// see [`StripeRail::list`]).
    pub async fn list(&self) -> Result<Vec<Authorization>, Error> {
        match self {
            Rail::Sandbox(rail) => rail.list().await,
            Rail::Stripe(rail) => rail.list().await.map_err(|e| {
                Error::unavailable(format!("the rail cannot list authorizations: {e}"))
            }),
        }
    }
}
