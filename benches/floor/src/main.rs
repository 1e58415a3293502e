//! The floor of P3 and P6 (ADR 0027): the platform's parts — an axum REST front, a tonic
//! channel to a tonic server, sea-orm's pool — with none of the platform's logic (no key, no
//! layers, no view), running `pgbench`'s own statements on `pgbench`'s database. What
//! `scripts/bench` measures here bounds what the API can reach on this machine with these
//! parts; the gap between this and P3/P6 is the platform's own work.
//!
//!   frameos-bench-floor backend <grpc addr> <database url>   (one prepared statement per call)
//!   frameos-bench-floor front <http addr> <backend url>      (GET /read, POST /write)

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use frameos_proto::v1;
use frameos_proto::v1::account_service_client::AccountServiceClient;
use frameos_proto::v1::account_service_server::{AccountService, AccountServiceServer};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [_, "backend", addr, url] => backend(addr, url).await,
        [_, "front", addr, backend_url] => front(addr, backend_url).await,
        _ => {
            anyhow::bail!("usage: frameos-bench-floor backend ADDR DB_URL | front ADDR BACKEND_URL")
        }
    }
}

/// The gRPC server: `WhoAmI` runs `pgbench -S`'s statement, `CreateAccount` `pgbench -N`'s
/// transaction. The request's fields are ignored; the account id goes round like pgbench's.
struct Floor {
    db: DatabaseConnection,
    next: AtomicI64,
    /// `pgbench_accounts` holds aids 1..=accounts (100,000 per unit of `pgbench -s`).
    accounts: i64,
}

impl Floor {
    fn aid(&self) -> i64 {
        // A stride through the table instead of a random draw: every call a different row.
        self.next
            .fetch_add(7_919, Ordering::Relaxed)
            .rem_euclid(self.accounts)
            + 1
    }
}

fn internal(e: sea_orm::DbErr) -> Status {
    Status::internal(e.to_string())
}

#[tonic::async_trait]
impl AccountService for Floor {
    async fn who_am_i(
        &self,
        _: Request<v1::WhoAmIRequest>,
    ) -> Result<Response<v1::WhoAmIResponse>, Status> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
                [self.aid().into()],
            ))
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found("no such account"))?;
        let balance: i32 = row.try_get_by_index(0).map_err(internal)?;
        Ok(Response::new(v1::WhoAmIResponse {
            account: Some(v1::Account {
                id: balance.to_string(),
                ..Default::default()
            }),
        }))
    }

    async fn create_account(
        &self,
        _: Request<v1::CreateAccountRequest>,
    ) -> Result<Response<v1::CreateAccountResponse>, Status> {
        // pgbench's "simple update" (-N): BEGIN, UPDATE, SELECT, INSERT, END.
        let (aid, delta) = (self.aid(), 7_i32);
        let txn = self.db.begin().await.map_err(internal)?;
        let run = |sql: &'static str, values: Vec<sea_orm::Value>| {
            Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
        };
        txn.execute_raw(run(
            "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
            vec![delta.into(), aid.into()],
        ))
        .await
        .map_err(internal)?;
        let row = txn
            .query_one_raw(run(
                "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
                vec![aid.into()],
            ))
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found("no such account"))?;
        let balance: i32 = row.try_get_by_index(0).map_err(internal)?;
        txn.execute_raw(run(
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
             VALUES (1, 1, $1, $2, CURRENT_TIMESTAMP)",
            vec![aid.into(), delta.into()],
        ))
        .await
        .map_err(internal)?;
        txn.commit().await.map_err(internal)?;
        Ok(Response::new(v1::CreateAccountResponse {
            account: Some(v1::Account {
                id: balance.to_string(),
                ..Default::default()
            }),
            api_key: String::new(),
        }))
    }
}

async fn backend(addr: &str, url: &str) -> anyhow::Result<()> {
    // The control plane's own pool: its size and its pings.
    let db = frameos_control_plane::connect_database(url)
        .await
        .context("database")?;
    let accounts: i64 = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT max(aid)::bigint FROM pgbench_accounts",
        ))
        .await?
        .context("no row")?
        .try_get_by_index::<Option<i64>>(0)?
        .context("pgbench_accounts is empty: run `pgbench -i` first")?;
    let floor = Floor {
        db,
        next: AtomicI64::new(0),
        accounts,
    };
    tonic::transport::Server::builder()
        .add_service(AccountServiceServer::new(floor))
        .serve(addr.parse().context("grpc address")?)
        .await
        .context("grpc server")
}

async fn front(addr: &str, backend_url: &str) -> anyhow::Result<()> {
    // The gateway's channel: lazy, one HTTP/2 connection, TCP_NODELAY.
    let channel = Endpoint::from_shared(backend_url.to_owned())?
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .connect_lazy();
    let app = Router::new()
        .route("/read", get(read))
        .route("/write", post(write))
        .with_state(Arc::new(channel));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await.context("http server")
}

type Reply = Result<Json<String>, (axum::http::StatusCode, String)>;

fn failed(status: Status) -> (axum::http::StatusCode, String) {
    (
        axum::http::StatusCode::BAD_GATEWAY,
        status.message().to_owned(),
    )
}

async fn read(State(channel): State<Arc<Channel>>) -> Reply {
    let reply = AccountServiceClient::new((*channel).clone())
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .map_err(failed)?;
    Ok(Json(reply.into_inner().account.unwrap_or_default().id))
}

async fn write(State(channel): State<Arc<Channel>>) -> Reply {
    let reply = AccountServiceClient::new((*channel).clone())
        .create_account(v1::CreateAccountRequest::default())
        .await
        .map_err(failed)?;
    Ok(Json(reply.into_inner().account.unwrap_or_default().id))
}
