//! Billing against a fake control plane: mandate keys without a key, balances by account.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use frameos_core::{Error, ErrorCode, Role};
use frameos_proto::ProtoEnum;
use frameos_proto::status::to_status;
use frameos_proto::v1::billing_service_server::{BillingService, BillingServiceServer};
use frameos_proto::v1::{
    Balance, GetBalanceRequest, GetBalanceResponse, LedgerEntry, ListMandateKeysRequest,
    ListMandateKeysResponse, MandateKey,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use super::forwarding::{caller, serve_fake};
use super::{app, assert_error, get, send};
use crate::Config;

/// Two keys, the old one kept after a rotation; records every GetBalance and whether
/// ListMandateKeys came with a key.
#[derive(Clone, Default)]
struct FakeBilling {
    balances: Arc<Mutex<Vec<GetBalanceRequest>>>,
    keyed_listings: Arc<Mutex<Vec<bool>>>,
}

/// 32 bytes whose standard base64 holds `+`, `/` and padding.
fn public_key() -> Vec<u8> {
    [0xfb, 0xff].repeat(16)
}

fn entry(direction: &str, account: &str, amount_minor: i64) -> LedgerEntry {
    LedgerEntry {
        transaction_id: "tx_1".into(),
        account: account.into(),
        direction: direction.into(),
        amount_minor,
        currency: "INR".into(),
        execution_id: "ex_1".into(),
        created_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
    }
}

#[tonic::async_trait]
impl BillingService for FakeBilling {
    async fn list_mandate_keys(
        &self,
        request: tonic::Request<ListMandateKeysRequest>,
    ) -> Result<tonic::Response<ListMandateKeysResponse>, tonic::Status> {
        // Anyone may list them; a key that is sent must be valid, as on every public route.
        let keyed = request.metadata().contains_key("authorization");
        self.keyed_listings.lock().unwrap().push(keyed);
        if keyed {
            caller(&request)?;
        }
        let key = |kid: &str, public_key: Vec<u8>| MandateKey {
            kid: kid.into(),
            alg: "Ed25519".into(),
            public_key,
        };
        Ok(tonic::Response::new(ListMandateKeysResponse {
            keys: vec![key("mk_2023", public_key()), key("mk_2022", vec![0; 32])],
        }))
    }

    async fn get_balance(
        &self,
        request: tonic::Request<GetBalanceRequest>,
    ) -> Result<tonic::Response<GetBalanceResponse>, tonic::Status> {
        let account = caller(&request)?;
        let query = request.into_inner();
        self.balances.lock().unwrap().push(query.clone());
        if account.role != Role::Admin.to_proto() && account.id != query.account_id {
            return Err(to_status(&Error::not_found("account")));
        }
        let developer = format!("developer:{}", query.account_id);
        Ok(tonic::Response::new(GetBalanceResponse {
            balance: Some(Balance {
                account_id: query.account_id,
                currency: query.currency,
                balance_minor: 400,
                entries: vec![
                    entry("credit", &developer, 400),
                    entry("debit", "user:acc_user", 500),
                ],
            }),
        }))
    }

    async fn list_earnings(
        &self,
        _request: tonic::Request<frameos_proto::v1::ListEarningsRequest>,
    ) -> Result<tonic::Response<frameos_proto::v1::ListEarningsResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not faked"))
    }
}

async fn fake_control_plane(shutdown: CancellationToken, billing: FakeBilling) -> Config {
    serve_fake(shutdown, Routes::new(BillingServiceServer::new(billing))).await
}

fn with_key(path: &str, key: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn mandate_keys_need_no_key_and_are_raw_bytes_in_standard_base64() {
    let shutdown = CancellationToken::new();
    let fake = FakeBilling::default();
    let app = app(&fake_control_plane(shutdown.clone(), fake.clone()).await);

    let (status, body) = send(&app, get("/v1/billing/mandate-keys")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"keys": [
            {"kid": "mk_2023", "alg": "Ed25519", "public_key": "+//7//v/+//7//v/+//7//v/+//7//v/+//7//v/+/8="},
            {"kid": "mk_2022", "alg": "Ed25519", "public_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
        ]})
    );
    let encoded = body["keys"][0]["public_key"].as_str().unwrap();
    assert_eq!(STANDARD.decode(encoded).unwrap(), public_key());

    // A valid key changes nothing; an invalid one is refused, as on every public route.
    let (status, keyed) = send(&app, with_key("/v1/billing/mandate-keys", "good")).await;
    assert_eq!((status, &keyed), (StatusCode::OK, &body));
    let (status, error) = send(&app, with_key("/v1/billing/mandate-keys", "forged")).await;
    assert_error(status, &error, ErrorCode::Unauthenticated);
    assert_eq!(*fake.keyed_listings.lock().unwrap(), [false, true, true]);
    shutdown.cancel();
}

#[tokio::test]
async fn balances_forward_the_account_and_currency_and_show_the_entries() {
    let shutdown = CancellationToken::new();
    let fake = FakeBilling::default();
    let app = app(&fake_control_plane(shutdown.clone(), fake.clone()).await);

    let (status, body) = send(&app, with_key("/v1/accounts/acc_developer/balance", "good")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "account_id": "acc_developer",
            "currency": "INR",
            "balance_minor": 400,
            "entries": [
                {
                    "transaction_id": "tx_1",
                    "account": "developer:acc_developer",
                    "direction": "credit",
                    "amount_minor": 400,
                    "currency": "INR",
                    "execution_id": "ex_1",
                    "created_at": "2023-11-14T22:13:20Z",
                },
                {
                    "transaction_id": "tx_1",
                    "account": "user:acc_user",
                    "direction": "debit",
                    "amount_minor": 500,
                    "currency": "INR",
                    "execution_id": "ex_1",
                    "created_at": "2023-11-14T22:13:20Z",
                },
            ],
        })
    );

    let (status, body) = send(
        &app,
        with_key("/v1/accounts/acc_other/balance?currency=USD", "admin"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account_id"], "acc_other");
    assert_eq!(body["currency"], "USD");

    // Another account's balance is not found, for anyone but an admin.
    let (status, body) = send(&app, with_key("/v1/accounts/acc_other/balance", "good")).await;
    assert_error(status, &body, ErrorCode::NotFound);
    let (status, body) = send(
        &app,
        with_key("/v1/accounts/acc_developer/balance", "forged"),
    )
    .await;
    assert_error(status, &body, ErrorCode::Unauthenticated);

    let forwarded: Vec<(String, String)> = fake
        .balances
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.account_id.clone(), r.currency.clone()))
        .collect();
    let expected = [
        ("acc_developer", "INR"),
        ("acc_other", "USD"),
        ("acc_other", "INR"),
    ];
    assert_eq!(
        forwarded,
        expected.map(|(account, currency)| (account.to_string(), currency.to_string()))
    );

    // Without a key the gateway answers itself; the control plane never hears of it.
    let (status, body) = send(&app, get("/v1/accounts/acc_developer/balance")).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);
    assert_eq!(fake.balances.lock().unwrap().len(), 3);
    shutdown.cancel();
}
