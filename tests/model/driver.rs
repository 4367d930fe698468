//! Plays one player's script against the server and holds every answer to the model: the
//! code, the HTTP status, the balance, the transaction ids, and at the end the stored wallet.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use croupier::money::Currency;
use futures::future::join_all;
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::helpers::{OpReply, Player, Reply, TestApp};
use crate::model::{http_status, Answer, Call, Cents, Detail, Expect, Ids, Wallet};
use crate::ops::{Op, Script, FUNDING_TX};

/// Answers by call and code, and how races were ordered: what a run covered.
pub type Tally = Mutex<BTreeMap<String, u64>>;

fn count(tally: &Tally, key: String) {
    *tally.lock().expect("tally").entry(key).or_default() += 1;
}

/// Numbers players across the run: ids stay unique on every database of the process.
static NEXT_PLAYER: AtomicU64 = AtomicU64::new(1);

/// What the server answered to one call.
#[derive(Debug)]
pub struct Seen {
    http: u16,
    answer: Answer,
    ids: Vec<String>,
    body: String,
}

struct Driver<'a> {
    app: &'a TestApp,
    tally: &'a Tally,
    num: u64,
    player: Player,
    model: Wallet,
    /// The last money call, for `Op::Again`.
    last: Option<Call>,
    calls: u64,
}

/// Runs a case: every script side by side, each in order. Returns the number of calls sent.
pub async fn run_case(app: &TestApp, tally: &Tally, scripts: &[Script]) -> Result<u64, String> {
    let outcomes = join_all(scripts.iter().map(|s| run_script(app, tally, s))).await;
    let mut calls = 0;
    let mut errors = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(n) => calls += n,
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(calls)
    } else {
        Err(errors.join("\n\n"))
    }
}

async fn run_script(app: &TestApp, tally: &Tally, script: &Script) -> Result<u64, String> {
    let num = NEXT_PLAYER.fetch_add(1, Ordering::Relaxed);
    let mut d = Driver {
        app,
        tally,
        num,
        player: Player {
            external_id: format!("m{num}"),
            currency: Currency::parse("USD").expect("USD"),
            session: Uuid::nil(),
        },
        model: Wallet::default(),
        last: None,
        calls: 0,
    };
    d.step("setup", &Op::Call(Call::Create)).await?;
    let session = app
        .admin
        .session_open(
            &app.provider.id,
            &app.operator.id,
            &d.player.external_id,
            d.player.currency,
            "model-game",
            180,
        )
        .await
        .map_err(|e| format!("opening a session for m{num}: {e}"))?;
    d.player.session = session.0;
    if script.funds.cents > 0 {
        let funding = Call::Deposit {
            tx: FUNDING_TX,
            amount: script.funds,
        };
        d.step("setup", &Op::Call(funding)).await?;
    }
    for (i, op) in script.ops.iter().enumerate() {
        d.step(&format!("op {i}"), op).await?;
    }
    d.check_wallet().await?;
    Ok(d.calls)
}

impl Driver<'_> {
    async fn step(&mut self, at: &str, op: &Op) -> Result<(), String> {
        let before = self.model.clone();
        let outcome = match op {
            Op::Call(call) => self.single(call.clone()).await,
            Op::Again => match self.last.clone() {
                Some(call) => self.single(call.flipped()).await,
                None => Ok(()),
            },
            Op::Dup(n, call) => self.duplicates(usize::from(*n), call).await,
            Op::Race(a, b) => self.race(a, b).await,
        };
        outcome.map_err(|e| {
            format!(
                "player m{} at {at}: {op:?}\n  model before: balance {} cents, {} journal rows\n{e}",
                self.num, before.balance, before.rows
            )
        })
    }

    async fn single(&mut self, call: Call) -> Result<(), String> {
        let seen = self.send(&call).await;
        self.calls += 1;
        self.model = try_order(&self.model, &[(&call, &seen)])?;
        self.count("", &[(&call, &seen)]);
        self.remember(&call);
        Ok(())
    }

    /// The same call `n` times at once: one of them is the first, the others repeats.
    async fn duplicates(&mut self, n: usize, call: &Call) -> Result<(), String> {
        let seen = join_all((0..n).map(|_| self.send(call))).await;
        self.calls += n as u64;
        let mut failure = String::new();
        for first in 0..n {
            let mut order = vec![(call, &seen[first])];
            order.extend((0..n).filter(|&i| i != first).map(|i| (call, &seen[i])));
            match try_order(&self.model, &order) {
                Ok(model) => {
                    self.model = model;
                    self.count("at once ", &order);
                    self.remember(call);
                    return Ok(());
                }
                Err(e) if first == 0 => failure = e,
                Err(_) => {}
            }
        }
        Err(format!("no answer came first as the rules say:\n{failure}"))
    }

    /// Two calls at once: the answers must be those of one order or the other.
    async fn race(&mut self, a: &Call, b: &Call) -> Result<(), String> {
        let (sa, sb) = futures::join!(self.send(a), self.send(b));
        self.calls += 2;
        let ab = try_order(&self.model, &[(a, &sa), (b, &sb)]);
        let ba = try_order(&self.model, &[(b, &sb), (a, &sa)]);
        let (model, order) = match (ab, ba) {
            (Ok(x), Ok(y)) if x != y => (
                self.which(a, x, y).await?,
                "either order, told apart by the stored bet",
            ),
            (Ok(x), Ok(_)) => (x, "either order"),
            (Ok(x), Err(_)) => (x, "in order"),
            (Err(_), Ok(y)) => (y, "in reverse order"),
            (Err(x), Err(y)) => return Err(format!("neither order fits:\n{x}\n{y}")),
        };
        self.model = model;
        count(self.tally, format!("race {order}"));
        self.count("raced ", &[(a, &sa), (b, &sb)]);
        self.remember(b);
        Ok(())
    }

    /// Both orders fit the answers but leave different books: the stored bet decides.
    async fn which(&self, call: &Call, x: Wallet, y: Wallet) -> Result<Wallet, String> {
        let slot = call.bet().ok_or("a race of bet calls")?;
        let stored = self.app.bet_state(&self.bet_id(slot)).await;
        let fits = |m: &Wallet| m.bet_state(slot) == stored.as_deref();
        match (fits(&x), fits(&y)) {
            (true, _) => Ok(x),
            (_, true) => Ok(y),
            _ => Err(format!(
                "the stored bet is {stored:?}, which neither order gives"
            )),
        }
    }

    fn count(&self, how: &str, steps: &[(&Call, &Seen)]) {
        for (call, seen) in steps {
            let key = format!("{how}{} {}", call.name(), seen.answer.code);
            count(self.tally, key);
        }
    }

    fn remember(&mut self, call: &Call) {
        if call.moves_money() {
            self.last = Some(call.clone());
        }
    }

    /// The wallet as stored: balance and journal rows, as the model has them.
    async fn check_wallet(&self) -> Result<(), String> {
        let (balance, rows) = self.app.wallet(&self.player).await;
        let stored = (cents(balance), rows);
        let model = (Some(self.model.balance), self.model.rows);
        if stored == model {
            Ok(())
        } else {
            Err(format!(
                "player m{}: the stored wallet (balance, journal rows) is {stored:?}, the model's {model:?}",
                self.num
            ))
        }
    }

    fn bet_id(&self, slot: u8) -> String {
        (self.num * 100 + u64::from(slot)).to_string()
    }

    fn bet_json(&self, slot: u8, plain: bool) -> String {
        let id = self.bet_id(slot);
        if plain {
            id
        } else {
            format!("\"{id}\"")
        }
    }

    fn tx_id(&self, slot: u8) -> String {
        format!("m{}-t{slot}", self.num)
    }

    async fn send(&self, call: &Call) -> Seen {
        let (app, p) = (self.app, &self.player);
        match self.request(call) {
            Request::Balance => provider(app.balance(p).await),
            Request::Bet(op, body) => provider(app.call(p, op, &body).await),
            Request::Post(path, body) => operator(call, app.op_post(path, &body).await),
            Request::Get(path) => operator(call, app.op_get(&path).await),
        }
    }

    /// The HTTP request of a call.
    fn request(&self, call: &Call) -> Request {
        let round = |r: &Option<u8>| {
            r.map(|r| format!(r#","gameRoundId":"r{r}""#))
                .unwrap_or_default()
        };
        let ext = &self.player.external_id;
        let transfer = |tx: u8, amount: crate::model::Amount| {
            let tx = self.tx_id(tx);
            let amount = amount.json();
            format!(
                r#"{{"playerExternalId":"{ext}","currency":"USD","amount":{amount},"transactionId":"{tx}"}}"#
            )
        };
        match call {
            Call::Balance => Request::Balance,
            Call::PayIn {
                bet,
                round: r,
                stake,
            } => {
                let (id, r, s) = (self.bet_json(*bet, stake.plain), round(r), stake.json());
                Request::Bet("pay-in", format!(r#"{{"betId":{id},"betAmount":{s}{r}}}"#))
            }
            Call::PayOut { bet, win } => {
                let (id, w) = (self.bet_json(*bet, win.plain), win.json());
                Request::Bet("pay-out", format!(r#"{{"betId":{id},"winAmount":{w}}}"#))
            }
            Call::PayInOut {
                bet,
                round: r,
                stake,
                win,
            } => {
                let (id, r) = (self.bet_json(*bet, stake.plain), round(r));
                let (s, w) = (stake.json(), win.json());
                let body = format!(r#"{{"betId":{id},"betAmount":{s},"winAmount":{w}{r}}}"#);
                Request::Bet("pay-in-out", body)
            }
            Call::Refund { bet, plain } => {
                let id = self.bet_json(*bet, *plain);
                Request::Bet("refund", format!(r#"{{"betId":{id}}}"#))
            }
            Call::Create => Request::Post(
                "/v1/player/create",
                format!(r#"{{"playerExternalId":"{ext}","currency":"USD"}}"#),
            ),
            Call::Deposit { tx, amount } => {
                Request::Post("/v1/player/wallet/deposit", transfer(*tx, *amount))
            }
            Call::Withdraw { tx, amount } => {
                Request::Post("/v1/player/wallet/withdraw", transfer(*tx, *amount))
            }
            Call::WalletBalance => Request::Get(format!(
                "/v1/player/wallet/balance?playerExternalId={ext}&currency=USD"
            )),
            Call::CheckTx { tx } => Request::Get(format!("/v1/transactions/{}", self.tx_id(*tx))),
        }
    }
}

enum Request {
    Balance,
    Bet(&'static str, String),
    Post(&'static str, String),
    Get(String),
}

/// Applies `steps` in this order to a copy of the model; the copy if every answer fits.
fn try_order(model: &Wallet, steps: &[(&Call, &Seen)]) -> Result<Wallet, String> {
    let mut m = model.clone();
    let mut told = Vec::new();
    for (call, seen) in steps {
        let expect = m.apply(call);
        told.push(format!(
            "  {call:?}\n    rules: {expect:?}\n    server: HTTP {} {}",
            seen.http, seen.body
        ));
        if !fits(call, &expect, seen) {
            return Err(told.join("\n"));
        }
        if let Ids::Learn(_) = expect.ids {
            m.learn(call, &seen.ids);
        }
    }
    Ok(m)
}

fn fits(call: &Call, expect: &Expect, seen: &Seen) -> bool {
    let provider = call.bet().is_some() || *call == Call::Balance;
    let ids = match &expect.ids {
        Ids::None => seen.ids.is_empty(),
        Ids::Learn(n) => seen.ids.len() == *n && seen.ids.iter().all(|id| !id.is_empty()),
        Ids::Known(ids) => &seen.ids == ids,
    };
    ids && seen.http == http_status(provider, expect.answer.code) && seen.answer == expect.answer
}

/// An amount in cents, if it is a whole number of cents.
fn cents(d: Decimal) -> Option<Cents> {
    let c = d * Decimal::from(100);
    if c.fract().is_zero() {
        i64::try_from(c).ok()
    } else {
        None
    }
}

fn raw_cents(raw: Option<&&RawValue>) -> Option<Cents> {
    raw.and_then(|r| Decimal::from_str(r.get()).ok())
        .and_then(cents)
}

fn provider(reply: Reply) -> Seen {
    let ids = [
        "betTransactionId",
        "winTransactionId",
        "refundTransactionId",
    ]
    .iter()
    .filter_map(|f| reply.str(f))
    .collect();
    Seen {
        http: reply.status,
        answer: Answer {
            code: reply.code(),
            balance: reply.balance().and_then(cents),
            detail: Detail::None,
        },
        ids,
        body: reply.body,
    }
}

/// The fields of `data` as written (amounts read exactly).
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Option<HashMap<String, &'a RawValue>>,
}

fn operator(call: &Call, reply: OpReply) -> Seen {
    let envelope: Option<Envelope> = serde_json::from_str(&reply.body).ok();
    let data = envelope.and_then(|e| e.data).unwrap_or_default();
    let text = |f: &str| reply.data()[f].as_str().map(str::to_string);
    let detail = match (call, data.is_empty()) {
        (_, true) => Detail::None,
        (Call::Create, _) => Detail::Created(reply.data()["created"] == true),
        (Call::WalletBalance, _) => {
            Detail::Withdrawable(raw_cents(data.get("withdrawable")).unwrap_or(-1))
        }
        (Call::CheckTx { .. }, _) => Detail::Transfer {
            kind: known_word(text("type")),
            status: known_word(text("status")),
            refusal: reply.data()["refusalCode"].as_i64(),
            amount: raw_cents(data.get("amount")).unwrap_or(-1),
        },
        _ => Detail::Moved(raw_cents(data.get("amount")).unwrap_or(-1)),
    };
    Seen {
        http: reply.status,
        answer: Answer {
            code: reply.code(),
            balance: raw_cents(data.get("balance")),
            detail,
        },
        ids: text("referenceId").into_iter().collect(),
        body: reply.body,
    }
}

fn known_word(word: Option<String>) -> &'static str {
    match word.as_deref() {
        Some("deposit") => "deposit",
        Some("withdrawal") => "withdrawal",
        Some("completed") => "completed",
        Some("refused") => "refused",
        _ => "(something else)",
    }
}
