//! The game providers' side: virtual providers, each the only one to play its players, each
//! keeping its own model of their balances and bets. A call answered with a definite code
//! updates the model; a call with no answer or a retryable one (99) is sent again — a new
//! request id, the same body — until it is decided, so every bet ends known. As no one else
//! touches a provider's players, every balance the server answers must equal the model.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use tokio::time::Instant;

use super::faults::Fault;
use super::tally::Tally;
use crate::client::{Answer, Connection, Signer};

/// What a bet must look like in the database at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BetState {
    /// Refused: no trace.
    Absent,
    Open {
        stake: Decimal,
    },
    Settled {
        stake: Decimal,
        win: Decimal,
    },
    Refunded,
    Tombstone,
}

/// One provider's model: its players' balances and every bet it sent.
#[derive(Debug, Default, Clone)]
pub struct Book {
    pub balances: BTreeMap<usize, Decimal>,
    pub bets: HashMap<String, BetState>,
    /// Bets whose money call was acknowledged (1 or 104).
    pub acknowledged: Vec<String>,
}

impl Book {
    /// Adds another provider's model (their players and bets are apart).
    pub fn absorb(&mut self, other: Book) {
        self.balances.extend(other.balances);
        self.bets.extend(other.bets);
        self.acknowledged.extend(other.acknowledged);
    }
}

/// What every provider shares with the fault injector.
#[derive(Debug, Default)]
pub struct Shared {
    /// No new calls once set; calls under way are still decided.
    pub stop: AtomicBool,
    /// When the load was told to stop.
    pub stopped_at: std::sync::OnceLock<Instant>,
    /// The fault under way (`Fault::number`), 0 when calm.
    pub fault: AtomicUsize,
    pub decided: AtomicU64,
    /// Providers retrying a call now.
    pub retrying: AtomicU64,
}

#[derive(Clone)]
pub struct PlayConfig {
    pub addr: std::net::SocketAddr,
    pub signer: Signer,
    pub sessions: Arc<Vec<String>>,
    pub providers: usize,
    pub funds: Decimal,
    pub seed: u64,
    /// A call not answered in this long is given up and sent again.
    pub attempt_timeout: Duration,
    /// A bet call answered later than this is late (the server's deadline missed).
    pub answer_bound: Duration,
    /// When the load started (for the traces).
    pub start: Instant,
    /// This long after the load stopped, a call still undecided is left so.
    pub drain: Duration,
}

#[derive(Debug, Clone)]
enum Plan {
    Balance,
    PayIn {
        stake: Decimal,
    },
    PayOut {
        stake: Decimal,
        win: Decimal,
    },
    PayInOut {
        stake: Decimal,
        win: Decimal,
    },
    /// A refund of a bet in this state (Absent: never placed, leaves a tombstone).
    Refund {
        of: BetState,
    },
    /// A PayIn for a bet refunded before it came: must answer 6.
    PayInAfterRefund,
}

struct Call {
    plan: Plan,
    player: usize,
    bet: String,
    path: String,
    body: Option<String>,
}

const STAKES: &[&str] = &["0.25", "1", "2.50", "10"];
const WINS: &[&str] = &["0", "0", "0.75", "1.50", "20"];
const KEPT: usize = 64;

/// One virtual provider: its players, its model, its open bets.
pub struct Provider {
    config: PlayConfig,
    shared: Arc<Shared>,
    number: usize,
    players: Vec<usize>,
    rng: SmallRng,
    connection: Connection,
    book: Book,
    tally: Tally,
    counter: u64,
    open: Vec<(usize, String, Decimal)>,
    settled: Vec<(usize, String, Decimal, Decimal)>,
    refunded_first: Vec<(usize, String)>,
}

fn amount(list: &[&str], rng: &mut SmallRng) -> Decimal {
    let pick = list.get(rng.gen_range(0..list.len())).copied();
    pick.and_then(|a| a.parse().ok()).unwrap_or(Decimal::ONE)
}

impl Provider {
    /// Provider `number` of `config.providers`: it plays every player whose index leaves
    /// that remainder.
    pub fn new(config: PlayConfig, shared: Arc<Shared>, number: usize) -> Self {
        let players: Vec<usize> = (number..config.sessions.len())
            .step_by(config.providers.max(1))
            .collect();
        let book = Book {
            balances: players.iter().map(|p| (*p, config.funds)).collect(),
            ..Book::default()
        };
        let seed = config.seed ^ (number as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Self {
            connection: Connection::new(config.addr, number as u64),
            rng: SmallRng::seed_from_u64(seed),
            config,
            shared,
            number,
            players,
            book,
            tally: Tally::default(),
            counter: 0,
            open: Vec::new(),
            settled: Vec::new(),
            refunded_first: Vec::new(),
        }
    }

    /// Plays until told to stop, then returns the model and the counts.
    pub async fn play(mut self) -> (Book, Tally) {
        while !self.shared.stop.load(Ordering::Relaxed) && !self.players.is_empty() {
            let call = self.next_call();
            let answer = self.decide(&call).await;
            match answer {
                Some((answer, retried)) => self.learn(&call, &answer, retried),
                None => {
                    self.tally.undecided += 1;
                    self.tally
                        .example(format!("undecided: {} {:?}", call.path, call.body));
                    break;
                }
            }
        }
        (self.book, self.tally)
    }

    fn new_bet(&mut self) -> String {
        self.counter += 1;
        format!(
            "chaos-{}-{}-{}",
            self.config.seed, self.number, self.counter
        )
    }

    fn pick_player(&mut self) -> usize {
        let i = self.rng.gen_range(0..self.players.len());
        self.players.get(i).copied().unwrap_or_default()
    }

    /// The mix: PayInOut 40%, PayIn 25%, PayOut 20%, refunds of open bets 3%, of settled
    /// ones 2%, of bets never placed 2% (and their PayIn later, 2%), Balance the rest.
    fn next_call(&mut self) -> Call {
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=39 => {
                let (player, bet, stake) = self.new_stake();
                let win = amount(WINS, &mut self.rng);
                self.call(Plan::PayInOut { stake, win }, player, bet)
            }
            40..=64 if self.open.len() < KEPT => self.pay_in(),
            40..=84 if !self.open.is_empty() => {
                let (player, bet, stake) = self.take_open();
                let win = amount(WINS, &mut self.rng);
                self.call(Plan::PayOut { stake, win }, player, bet)
            }
            85..=87 if !self.open.is_empty() => {
                let (player, bet, stake) = self.take_open();
                let of = BetState::Open { stake };
                self.call(Plan::Refund { of }, player, bet)
            }
            88..=89 if !self.settled.is_empty() => {
                let i = self.rng.gen_range(0..self.settled.len());
                let (player, bet, stake, win) = self.settled.swap_remove(i);
                let of = BetState::Settled { stake, win };
                self.call(Plan::Refund { of }, player, bet)
            }
            90..=91 => {
                let (player, bet, _) = self.new_stake();
                let of = BetState::Absent;
                self.call(Plan::Refund { of }, player, bet)
            }
            92..=93 if !self.refunded_first.is_empty() => {
                let (player, bet) = self.refunded_first.swap_remove(0);
                self.call(Plan::PayInAfterRefund, player, bet)
            }
            // A payout or refund wanted with no bet to take it: a new bet instead.
            40..=89 => self.pay_in(),
            _ => {
                let player = self.pick_player();
                self.call(Plan::Balance, player, String::new())
            }
        }
    }

    /// A player, a new bet id and a stake.
    fn new_stake(&mut self) -> (usize, String, Decimal) {
        let stake = amount(STAKES, &mut self.rng);
        (self.pick_player(), self.new_bet(), stake)
    }

    fn pay_in(&mut self) -> Call {
        let (player, bet, stake) = self.new_stake();
        self.call(Plan::PayIn { stake }, player, bet)
    }

    fn take_open(&mut self) -> (usize, String, Decimal) {
        let i = self.rng.gen_range(0..self.open.len());
        self.open.swap_remove(i)
    }

    fn call(&self, plan: Plan, player: usize, bet: String) -> Call {
        let session = self
            .config
            .sessions
            .get(player)
            .map(String::as_str)
            .unwrap_or_default();
        let (action, body) = match &plan {
            Plan::Balance => ("", None),
            Plan::PayIn { stake } => ("pay-in", Some(format!(r#""betAmount":{stake}"#))),
            Plan::PayOut { win, .. } => ("pay-out", Some(format!(r#""winAmount":{win}"#))),
            Plan::PayInOut { stake, win } => (
                "pay-in-out",
                Some(format!(r#""betAmount":{stake},"winAmount":{win}"#)),
            ),
            Plan::Refund { .. } => ("refund", Some(String::new())),
            Plan::PayInAfterRefund => ("pay-in", Some(r#""betAmount":1"#.to_string())),
        };
        let (path, body) = match body {
            None => (format!("/v1/sessions/{session}/balance"), None),
            Some(fields) => {
                let sep = if fields.is_empty() { "" } else { "," };
                (
                    format!("/v1/sessions/{session}/bets/{action}"),
                    Some(format!(r#"{{"betId":"{bet}"{sep}{fields}}}"#)),
                )
            }
        };
        Call {
            plan,
            player,
            bet,
            path,
            body,
        }
    }

    /// Sends the call until it has a definite answer (None: still undecided at the end);
    /// with whether it took more than one attempt.
    async fn decide(&mut self, call: &Call) -> Option<(Answer, bool)> {
        let first_sent = Instant::now();
        // The last fault seen under way while the call was being decided.
        let mut marker = self.shared.fault.load(Ordering::Relaxed);
        let mut backoff = Duration::from_millis(20);
        let mut retrying = false;
        let mut trace = Vec::new();
        let answer = loop {
            let (answer, fault) = self.attempt(call, &mut trace).await;
            if fault != 0 {
                marker = fault;
            }
            match answer {
                Some(a) if a.code != 99 && a.code != -1 => break Some(a),
                _ => {}
            }
            if let Some(stopped) = self.shared.stopped_at.get() {
                if Instant::now() >= *stopped + self.config.drain {
                    break None;
                }
            }
            if !retrying {
                retrying = true;
                self.shared.retrying.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        };
        if retrying {
            self.shared.retrying.fetch_sub(1, Ordering::Relaxed);
        }
        if answer.is_some() {
            self.shared.decided.fetch_add(1, Ordering::Relaxed);
            let took = first_sent.elapsed();
            self.tally.decided(marker, took, retrying);
            if retrying {
                self.tally.slowest(took, || {
                    format!("{} {:?}: {}", call.path, call.body, trace.join(" "))
                });
            }
        }
        answer.map(|a| (a, retrying))
    }

    /// One attempt: the answer (None: no HTTP answer) and the fault under way when it ended
    /// (the one it counts for). Adds `sent-at+took→code` to `trace`.
    async fn attempt(&mut self, call: &Call, trace: &mut Vec<String>) -> (Option<Answer>, usize) {
        let sent = Instant::now();
        let attempt = tokio::time::timeout(
            self.config.attempt_timeout,
            self.connection
                .call(&self.config.signer, &call.path, call.body.clone()),
        )
        .await;
        let took = sent.elapsed();
        let fault = self.shared.fault.load(Ordering::Relaxed);
        let answer = match attempt {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(_)) | Err(_) => {
                self.connection.reset();
                None
            }
        };
        let at = sent.duration_since(self.config.start).as_secs_f64();
        let code = answer
            .as_ref()
            .map_or("none".to_string(), |a| a.code.to_string());
        if trace.len() < 40 {
            trace.push(format!("{at:.1}s+{}ms→{code}", took.as_millis()));
        }
        let is_bet = !matches!(call.plan, Plan::Balance);
        let bound = self.config.answer_bound;
        if self
            .tally
            .attempt(fault, answer.as_ref(), took, is_bet, bound)
        {
            self.tally.example(format!(
                "late answer: sent at {at:.1}s, {code} after {} ms ({}): {}",
                took.as_millis(),
                Fault::name_of(fault),
                call.path
            ));
        }
        (answer, fault)
    }

    /// Updates the model from a definite answer, and checks the answer against it. A money
    /// call is applied now (1) or, sent again after an undecided attempt, may have been
    /// before (104).
    fn learn(&mut self, call: &Call, answer: &Answer, retried: bool) {
        let applied = answer.code == 1 || answer.code == 104;
        let money: &[i64] = if retried { &[1, 104] } else { &[1] };
        let (expected, kind): (&[i64], &str) = match call.plan {
            Plan::Balance => (&[1], "balance"),
            Plan::PayInAfterRefund => (&[6], "payInAfterRefund"),
            Plan::PayIn { .. } => (money, "payIn"),
            Plan::PayOut { .. } => (money, "payOut"),
            Plan::PayInOut { .. } => (money, "payInOut"),
            Plan::Refund { .. } => (money, "refund"),
        };
        self.tally.call(kind);
        if !expected.contains(&answer.code) {
            self.tally.unexpected += 1;
            self.tally.example(format!(
                "answered {} (HTTP {}): {} {:?}",
                answer.code, answer.status, call.path, call.body
            ));
        }
        let effect = self.apply(call, applied);
        let balance = self.book.balances.entry(call.player).or_default();
        *balance += effect;
        let model = *balance;
        if let Some(told) = answer.balance {
            if told != model && (applied || matches!(call.plan, Plan::Balance)) {
                self.tally.balance_off += 1;
                self.tally.example(format!(
                    "balance {told} answered, model {model}: {} {:?}",
                    call.path, call.body
                ));
            }
        }
    }

    /// The bet's new state and the money it moved.
    fn apply(&mut self, call: &Call, applied: bool) -> Decimal {
        let bet = call.bet.clone();
        let (state, effect) = match (&call.plan, applied) {
            (Plan::Balance, _) => return Decimal::ZERO,
            (Plan::PayInAfterRefund, _) => return Decimal::ZERO,
            (Plan::PayIn { stake }, true) => {
                self.open.push((call.player, bet.clone(), *stake));
                (BetState::Open { stake: *stake }, -*stake)
            }
            (Plan::PayInOut { stake, win }, true) | (Plan::PayOut { stake, win }, true) => {
                if self.settled.len() < KEPT {
                    self.settled.push((call.player, bet.clone(), *stake, *win));
                }
                let paid = match call.plan {
                    Plan::PayOut { .. } => *win,
                    _ => *win - *stake,
                };
                let state = BetState::Settled {
                    stake: *stake,
                    win: *win,
                };
                (state, paid)
            }
            (Plan::Refund { of }, true) => match of {
                BetState::Open { stake } => (BetState::Refunded, *stake),
                BetState::Settled { stake, win } => (BetState::Refunded, *stake - *win),
                _ => {
                    self.refunded_first.truncate(KEPT);
                    self.refunded_first.push((call.player, bet.clone()));
                    (BetState::Tombstone, Decimal::ZERO)
                }
            },
            (Plan::PayIn { .. } | Plan::PayInOut { .. }, false) => {
                (BetState::Absent, Decimal::ZERO)
            }
            // A refused payout or refund leaves the bet as it was.
            (_, false) => return Decimal::ZERO,
        };
        // A tombstone moves no money and has no journal row.
        if applied && state != BetState::Tombstone {
            self.book.acknowledged.push(bet.clone());
        }
        self.book.bets.insert(bet, state);
        effect
    }
}
