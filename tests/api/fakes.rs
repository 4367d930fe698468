//! Local fake inabit (Platform GraphQL + Terminal REST) and B2BINPAY servers, on wiremock.
//! Each keeps the state a real provider would (deposits, withdrawals, payouts, tokens) so that
//! tests can change it between calls and count what croupier asked for.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const TERMINAL_KEY: &str = "terminal-key-for-tests";
pub const FIRST_LOGIN_TOKEN: &str = "login-token-0";

#[derive(Debug, Clone)]
pub struct Withdrawal {
    pub id: String,
    pub note: String,
    pub address: String,
    /// The amount exactly as croupier sent it (JSON text).
    pub amount: String,
    pub status: String,
    /// The wallet it leaves from.
    pub wallet: String,
}

#[derive(Default)]
pub struct InabitState {
    pub login_token: String,
    pub access_tokens: Vec<String>,
    /// Issued access tokens inabit no longer accepts.
    pub revoked: Vec<String>,
    pub login_refreshes: u32,
    pub refuse_login_refresh: bool,
    pub deposits: BTreeMap<String, Value>,
    pub clock: u64,
    pub withdrawals: Vec<Withdrawal>,
    pub create_calls: u32,
    /// Answer createWithdrawal this late (it is still recorded: the withdrawal exists).
    pub create_delay: Option<Duration>,
    /// Refuse createWithdrawal with a GraphQL error.
    pub refuse_create: bool,
    /// Answer createWithdrawal 503 with a GraphQL error body (nothing created).
    pub unavailable_create: bool,
    pub address_calls: u32,
    pub customer_calls: u32,
    /// Answer customer creation this late (the customer is still created).
    pub customer_delay: Option<Duration>,
    /// Refuse customer creation (HTTP 400, `{"error": "Invalid request"}`).
    pub refuse_customer: bool,
    /// The Terminal deposit resource answers 500.
    pub deposits_down: bool,
}

pub struct FakeInabit {
    pub server: MockServer,
    state: Arc<Mutex<InabitState>>,
}

fn bearer(req: &Request) -> String {
    req.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string()
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

impl FakeInabit {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(InabitState {
            login_token: FIRST_LOGIN_TOKEN.into(),
            ..Default::default()
        }));

        let s = state.clone();
        Mock::given(method("POST"))
            .and(path("/graphql"))
            .respond_with(move |req: &Request| graphql(&mut s.lock().unwrap(), req))
            .mount(&server)
            .await;

        let s = state.clone();
        Mock::given(method("GET"))
            .and(path_regex("^/v1/customer/transactions/[^/]+$"))
            .respond_with(move |req: &Request| {
                if bearer(req) != TERMINAL_KEY {
                    return ResponseTemplate::new(401);
                }
                let id = req.url.path().rsplit('/').next().unwrap_or("").to_string();
                let st = s.lock().unwrap();
                if st.deposits_down {
                    return ResponseTemplate::new(500);
                }
                match st.deposits.get(&id) {
                    Some(d) => ok(json!({ "data": d })),
                    None => ResponseTemplate::new(404).set_body_json(json!({"error": "not found"})),
                }
            })
            .mount(&server)
            .await;

        let s = state.clone();
        Mock::given(method("GET"))
            .and(path("/v1/customer/transactions"))
            .respond_with(move |req: &Request| {
                if bearer(req) != TERMINAL_KEY {
                    return ResponseTemplate::new(401);
                }
                let query: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
                let since = query.get("updatedAfter").cloned().unwrap_or_default();
                let limit: usize = query
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(100);
                let st = s.lock().unwrap();
                let mut items: Vec<&Value> = st
                    .deposits
                    .values()
                    .filter(|d| d["updatedAt"].as_str().unwrap_or("") >= since.as_str())
                    .collect();
                items.sort_by_key(|d| d["updatedAt"].as_str().unwrap_or("").to_string());
                items.truncate(limit);
                ok(json!(items))
            })
            .mount(&server)
            .await;

        let s = state.clone();
        Mock::given(method("POST"))
            .and(path("/v1/customer"))
            .respond_with(move |req: &Request| {
                let mut st = s.lock().unwrap();
                st.customer_calls += 1;
                if st.refuse_customer {
                    return ResponseTemplate::new(400)
                        .set_body_json(json!({"error": "Invalid request"}));
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let ident = body["customerIdentifier"].as_str().unwrap_or("?");
                let reply = ok(json!({"data": {"uuid": format!("cust-{ident}")}}));
                match st.customer_delay {
                    Some(delay) => reply.set_delay(delay),
                    None => reply,
                }
            })
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/customer/address-token"))
            .respond_with(|_: &Request| ok(json!({"token": "address-token"})))
            .mount(&server)
            .await;
        let s = state.clone();
        Mock::given(method("POST"))
            .and(path("/v1/customer/address"))
            .respond_with(move |req: &Request| {
                if bearer(req) != TERMINAL_KEY {
                    return ResponseTemplate::new(401);
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                s.lock().unwrap().address_calls += 1;
                let customer = body["customerUuid"].as_str().unwrap_or("?");
                let asset = body["asset"].as_str().unwrap_or("?");
                ok(json!({"address": format!("addr-{asset}-{customer}")}))
            })
            .mount(&server)
            .await;

        Self { server, state }
    }

    pub fn state(&self) -> MutexGuard<'_, InabitState> {
        self.state.lock().unwrap()
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.server.uri())
    }

    /// Puts (or updates) a deposit at inabit, as its API will report it.
    pub fn set_deposit(&self, id: &str, status: &str, amount: &str, address: &str) {
        let mut st = self.state();
        st.clock += 1;
        let updated = format!("2026-01-01T00:00:{:02}.000Z", st.clock);
        let amount: Value = serde_json::from_str(amount).unwrap();
        st.deposits.insert(
            id.to_string(),
            json!({
                "transactionId": id,
                "transactionHash": format!("0xhash-{id}"),
                "status": status,
                "amount": amount,
                "sourceAddress": "0xsender",
                "destinationAddress": address,
                "asset": "USDT",
                "blockchain": "TRON",
                "customerIdentifier": "irrelevant",
                "targetConfirmations": "1",
                "updatedAt": updated,
            }),
        );
    }

    /// Puts a deposit at inabit in any shape (to test what cannot be read).
    pub fn set_raw_deposit(&self, id: &str, mut deposit: Value) {
        let mut st = self.state();
        st.clock += 1;
        deposit["updatedAt"] = json!(format!("2026-01-01T00:00:{:02}.000Z", st.clock));
        st.deposits.insert(id.to_string(), deposit);
    }

    pub fn set_withdrawal_status(&self, note: &str, status: &str) {
        let mut st = self.state();
        for w in st.withdrawals.iter_mut().filter(|w| w.note == note) {
            w.status = status.to_string();
        }
    }

    pub fn withdrawals_with_note(&self, note: &str) -> Vec<Withdrawal> {
        self.state()
            .withdrawals
            .iter()
            .filter(|w| w.note == note)
            .cloned()
            .collect()
    }
}

fn unauthenticated() -> ResponseTemplate {
    ok(
        json!({"errors": [{"message": "Unauthorized", "extensions": {"code": "UNAUTHENTICATED"}}], "data": null}),
    )
}

fn graphql(st: &mut InabitState, req: &Request) -> ResponseTemplate {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) => {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "Invalid request"}))
        }
    };
    let query = body["query"].as_str().unwrap_or("");
    let token = bearer(req);
    if query.contains("getApiUserAccessToken") {
        if token != st.login_token {
            return unauthenticated();
        }
        let access = format!("access-token-{}", st.access_tokens.len() + 1);
        st.access_tokens.push(access.clone());
        return ok(json!({"data": {"getApiUserAccessToken": access}}));
    }
    if query.contains("refreshApiUserLoginToken") {
        if token != st.login_token || st.refuse_login_refresh {
            return unauthenticated();
        }
        st.login_refreshes += 1;
        st.login_token = format!("login-token-{}", st.login_refreshes);
        return ok(json!({"data": {"refreshApiUserLoginToken": st.login_token}}));
    }
    if !st.access_tokens.contains(&token) || st.revoked.contains(&token) {
        return unauthenticated();
    }
    let vars = &body["variables"];
    if query.contains("createWithdrawal") {
        st.create_calls += 1;
        if st.unavailable_create {
            return ResponseTemplate::new(503).set_body_json(json!({"errors": [{"code": "OPERATION_FAILED", "message": "upstream unavailable"}], "data": null}));
        }
        if st.refuse_create {
            return ok(
                json!({"errors": [{"code": "OPERATION_FAILED", "message": "Insufficient wallet balance", "path": ["createWithdrawal"], "extensions": {"code": "OPERATION_FAILED"}}], "data": null}),
            );
        }
        // The amount exactly as sent: from the raw body text.
        let raw = String::from_utf8_lossy(&req.body).to_string();
        let amount = raw
            .split("\"amount\":")
            .nth(1)
            .map(|rest| rest.split([',', '}']).next().unwrap_or("").to_string())
            .unwrap_or_default();
        let data = &vars["data"];
        let id = format!("wd-{}", st.withdrawals.len() + 1);
        st.withdrawals.push(Withdrawal {
            id: id.clone(),
            note: data["note"].as_str().unwrap_or("").to_string(),
            address: data["address"].as_str().unwrap_or("").to_string(),
            amount,
            status: "PendingApproval".into(),
            wallet: data["wallet"]["id"].as_str().unwrap_or("").to_string(),
        });
        let reply = ok(json!({"data": {"createWithdrawal": {"id": id}}}));
        return match st.create_delay {
            Some(delay) => reply.set_delay(delay),
            None => reply,
        };
    }
    if query.contains("transactions(") {
        let note = vars["where"]["note"]["equals"].as_str().unwrap_or("");
        let found: Vec<Value> = st
            .withdrawals
            .iter()
            .filter(|w| w.note == note)
            .map(|w| json!({"id": w.id, "note": w.note, "status": {"status": w.status}, "wallet": {"id": w.wallet}}))
            .collect();
        return ok(json!({"data": {"transactions": found}}));
    }
    if query.contains("transaction(") {
        let id = vars["where"]["id"].as_str().unwrap_or("");
        let found = st
            .withdrawals
            .iter()
            .find(|w| w.id == id)
            .map(|w| json!({"id": w.id, "note": w.note, "status": {"status": w.status}, "wallet": {"id": w.wallet}}));
        return ok(json!({"data": {"transaction": found}}));
    }
    ResponseTemplate::new(400).set_body_json(json!({"error": "Invalid request"}))
}

#[derive(Default)]
pub struct B2binpayState {
    /// idempotency key → payout id
    pub payouts: BTreeMap<String, String>,
    /// Every payout creation request: (idempotency key, tracking id, amount).
    pub requests: Vec<(String, String, String)>,
    pub tokens_issued: u32,
    /// Answer the next payout creation this late.
    pub delay_next: Option<Duration>,
    /// payout id → (transfer status, transfer amount) shown by `GET /payout/{id}/`.
    pub transfers: BTreeMap<String, (i64, String)>,
}

pub struct FakeB2binpay {
    pub server: MockServer,
    state: Arc<Mutex<B2binpayState>>,
}

impl FakeB2binpay {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(B2binpayState::default()));
        let s = state.clone();
        Mock::given(method("POST"))
            .and(path("/token/"))
            .respond_with(move |req: &Request| {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let attrs = &body["data"]["attributes"];
                if attrs["client_id"] != "b2b-client" || attrs["client_secret"] != "b2b-secret" {
                    return ResponseTemplate::new(401);
                }
                let mut st = s.lock().unwrap();
                st.tokens_issued += 1;
                ok(json!({"data": {"type": "auth-token", "id": "0", "attributes": {"access": "b2b-access", "expires_in": 3599}}}))
            })
            .mount(&server)
            .await;
        let s = state.clone();
        Mock::given(method("POST"))
            .and(path("/payout/"))
            .respond_with(move |req: &Request| {
                if bearer(req) != "b2b-access" {
                    return ResponseTemplate::new(401);
                }
                let key = req
                    .headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let attrs = &body["data"]["attributes"];
                let tracking = attrs["tracking_id"].as_str().unwrap_or("").to_string();
                let amount = attrs["amount"].as_str().unwrap_or("").to_string();
                let mut st = s.lock().unwrap();
                st.requests.push((key.clone(), tracking.clone(), amount.clone()));
                let next = (st.payouts.len() + 1000).to_string();
                let id = st.payouts.entry(key).or_insert(next).clone();
                let reply = ResponseTemplate::new(201).set_body_json(json!({
                    "data": {"type": "payout", "id": id, "attributes": {"amount": amount, "tracking_id": tracking, "status": 1}}
                }));
                match st.delay_next.take() {
                    Some(delay) => reply.set_delay(delay),
                    None => reply,
                }
            })
            .mount(&server)
            .await;
        let s = state.clone();
        Mock::given(method("GET"))
            .and(path_regex("^/payout/[0-9]+/$"))
            .respond_with(move |req: &Request| {
                if bearer(req) != "b2b-access" {
                    return ResponseTemplate::new(401);
                }
                let id = req.url.path().trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
                let st = s.lock().unwrap();
                let included: Vec<Value> = st
                    .transfers
                    .get(&id)
                    .map(|(status, amount)| {
                        vec![json!({"type": "transfer", "id": "900", "attributes": {"status": status, "amount": amount}})]
                    })
                    .unwrap_or_default();
                ok(json!({"data": {"type": "payout", "id": id, "attributes": {"status": 2}}, "included": included}))
            })
            .mount(&server)
            .await;
        Self { server, state }
    }

    pub fn state(&self) -> MutexGuard<'_, B2binpayState> {
        self.state.lock().unwrap()
    }
}
