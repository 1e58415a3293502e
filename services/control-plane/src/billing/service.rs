//! The `BillingService` gRPC endpoint: mandate verification keys and ledger balances.

use frameos_core::{Error, ErrorCode, Role};
use frameos_proto::status::to_status;
use frameos_proto::v1::{self, billing_service_server::BillingService};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use tonic::{Request, Response, Status};

use super::ledger;
use crate::accounts::auth;
use crate::entity::{ledger_transaction, mandate_key};
use crate::{db, view};

const RECENT_ENTRIES: u64 = 100;

pub struct BillingApi {
    db: DatabaseConnection,
}

impl BillingApi {
    pub fn new(db: DatabaseConnection) -> Self {
        BillingApi { db }
    }
}

fn reply<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(|e| to_status(&e))
}

#[tonic::async_trait]
impl BillingService for BillingApi {
    async fn list_mandate_keys(
        &self,
        _request: Request<v1::ListMandateKeysRequest>,
    ) -> Result<Response<v1::ListMandateKeysResponse>, Status> {
        reply(
            async {
                let rows = mandate_key::Entity::find()
                    .order_by_asc(mandate_key::Column::CreatedAt)
                    .all(&self.db)
                    .await
                    .map_err(db::error)?;
                let keys = rows
                    .into_iter()
                    .map(|row| {
                        let public_key = hex::decode(&row.public_key)
                            .map_err(|_| Error::internal("stored mandate key is not hex"))?;
                        Ok(v1::MandateKey {
                            kid: row.kid,
                            alg: "Ed25519".to_string(),
                            public_key,
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                Ok(v1::ListMandateKeysResponse { keys })
            }
            .await,
        )
    }

    async fn get_balance(
        &self,
        request: Request<v1::GetBalanceRequest>,
    ) -> Result<Response<v1::GetBalanceResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::User)?;
                let body = request.get_ref();
                if !caller.is_admin() && caller.account_id != body.account_id {
                    return Err(Error::not_found(format!("account {:?}", body.account_id)));
                }
                let currency = if body.currency.is_empty() {
                    "INR".to_string()
                } else {
                    frameos_billing::Currency::parse(&body.currency)
                        .map_err(|e| Error::new(ErrorCode::ValidationFailed, e.to_string()))?
                        .as_str()
                        .to_string()
                };
                let mut balance_minor: i64 = 0;
                let mut entries = Vec::new();
                for account in [
                    ledger::user_account(&body.account_id),
                    ledger::developer_account(&body.account_id),
                ] {
                    let b = ledger::balance(&self.db, &account, &currency, RECENT_ENTRIES).await?;
                    balance_minor = balance_minor
                        .checked_add(b.balance_minor)
                        .ok_or_else(|| Error::internal("balance overflow"))?;
                    entries.extend(b.entries);
                }
                entries.sort_by_key(|e| std::cmp::Reverse(e.id));
                let transactions: std::collections::HashMap<String, String> =
                    ledger_transaction::Entity::find()
                        .filter(
                            ledger_transaction::Column::Id
                                .is_in(entries.iter().map(|e| e.transaction_id.as_str())),
                        )
                        .all(&self.db)
                        .await
                        .map_err(db::error)?
                        .into_iter()
                        .map(|t| (t.id, t.execution_id))
                        .collect();
                let entries = entries
                    .into_iter()
                    .map(|e| v1::LedgerEntry {
                        execution_id: transactions
                            .get(&e.transaction_id)
                            .cloned()
                            .unwrap_or_default(),
                        transaction_id: e.transaction_id,
                        account: e.account,
                        direction: e.direction,
                        amount_minor: e.amount_minor,
                        currency: e.currency,
                        created_at: Some(view::timestamp(e.created_at)),
                    })
                    .collect();
                Ok(v1::GetBalanceResponse {
                    balance: Some(v1::Balance {
                        account_id: body.account_id.clone(),
                        currency,
                        balance_minor,
                        entries,
                    }),
                })
            }
            .await,
        )
    }

    async fn list_earnings(
        &self,
        request: Request<v1::ListEarningsRequest>,
    ) -> Result<Response<v1::ListEarningsResponse>, Status> {
        reply(
            async {
                let caller = auth::require(&request, Role::Developer)?;
                let asked = &request.get_ref().account_id;
                let account = if asked.is_empty() {
                    &caller.account_id
                } else {
                    asked
                };
                if !caller.is_admin() && *account != caller.account_id {
                    return Err(Error::not_found(format!("account {account:?}")));
                }
                let items = super::earnings::by_agent(&self.db, account).await?;
                Ok(v1::ListEarningsResponse { items })
            }
            .await,
        )
    }
}
