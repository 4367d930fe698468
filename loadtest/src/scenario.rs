//! What a virtual provider sends, and which answers it expects.

use clap::ValueEnum;
use rand::rngs::SmallRng;
use rand::Rng;
use rand_distr::{Distribution as _, Zipf};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// PayInOut 45%, PayIn then PayOut 25% + 25%, Balance 4%, Refund 1%.
    Mixed,
    /// The mixed load on 10 players only.
    Hot,
    /// Mixed, plus 5% of calls repeated with the same betId (must answer 104) and refunds
    /// sent before their bets (the bet must then answer 6).
    Retry,
    /// PayInOut only: the call the side-by-side benchmark compares with pgbench.
    Payinout,
    /// PayInOut only, on sessions of a seamless operator: every call goes to a casino wallet
    /// (the demo casino, started by the load tester).
    Seamless,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    Uniform,
    Zipf,
}

/// The kinds of call, for per-kind counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    Balance,
    PayIn,
    PayOut,
    PayInOut,
    Refund,
    Repeat,
}

/// One call to make.
#[derive(Debug, Clone)]
pub struct Call {
    pub op: Op,
    pub path: String,
    pub body: Option<String>,
    /// The answers that are right for this call.
    pub expect: &'static [i64],
    /// The bet moved money if answered 1 (PayIn, PayOut, PayInOut).
    pub moves_money: bool,
    pub bet_id: Option<String>,
    session: usize,
}

/// Picks players.
pub struct Players {
    sessions: Vec<String>,
    zipf: Option<Zipf<f64>>,
}

impl Players {
    pub fn new(sessions: Vec<String>, distribution: Distribution) -> anyhow::Result<Self> {
        anyhow::ensure!(!sessions.is_empty(), "no players");
        let zipf = match distribution {
            Distribution::Uniform => None,
            Distribution::Zipf => Some(Zipf::new(sessions.len() as u64, 1.1)?),
        };
        Ok(Self { sessions, zipf })
    }

    fn pick(&self, rng: &mut SmallRng) -> usize {
        match &self.zipf {
            Some(z) => (z.sample(rng) as usize).saturating_sub(1) % self.sessions.len(),
            None => rng.gen_range(0..self.sessions.len()),
        }
    }

    /// Every session, in player order.
    pub fn sessions(&self) -> &[String] {
        &self.sessions
    }

    fn session(&self, i: usize) -> &str {
        self.sessions.get(i).map(String::as_str).unwrap_or_default()
    }
}

/// A virtual provider's memory: its open bets, its last call, bets it refunded first.
pub struct Provider {
    scenario: Scenario,
    prefix: String,
    counter: u64,
    open: Vec<(usize, String)>,
    last: Option<Call>,
    cancelled_first: Vec<(usize, String)>,
}

const OK: &[i64] = &[1];
const REPEAT: &[i64] = &[104];
const CLOSED: &[i64] = &[6];
const WINS: &[&str] = &["0", "0", "1", "2", "0.5"];

impl Provider {
    pub fn new(scenario: Scenario, prefix: String) -> Self {
        Self {
            scenario,
            prefix,
            counter: 0,
            open: Vec::new(),
            last: None,
            cancelled_first: Vec::new(),
        }
    }

    fn bet_id(&mut self) -> String {
        self.counter += 1;
        format!("{}-{}", self.prefix, self.counter)
    }

    /// The next call.
    pub fn next(&mut self, players: &Players, rng: &mut SmallRng) -> Call {
        if self.scenario == Scenario::Retry {
            if let Some(last) = &self.last {
                if last.moves_money && rng.gen_bool(0.05) {
                    let mut again = last.clone();
                    again.op = Op::Repeat;
                    again.expect = REPEAT;
                    again.moves_money = false;
                    return again;
                }
            }
            if let Some((session, bet)) = self.cancelled_first.pop() {
                let body = format!(r#"{{"betId":"{bet}","betAmount":1}}"#);
                return self.call(players, Op::PayIn, session, Some(bet), body, CLOSED, false);
            }
        }
        let roll: f64 = rng.gen();
        if matches!(self.scenario, Scenario::Payinout | Scenario::Seamless) || roll < 0.45 {
            let session = players.pick(rng);
            let bet = self.bet_id();
            let win = WINS[rng.gen_range(0..WINS.len())];
            let body = format!(r#"{{"betId":"{bet}","betAmount":1,"winAmount":{win}}}"#);
            return self.call(players, Op::PayInOut, session, Some(bet), body, OK, true);
        }
        if roll < 0.70 || (roll < 0.95 && self.open.is_empty()) {
            let session = players.pick(rng);
            let bet = self.bet_id();
            self.open.push((session, bet.clone()));
            let body = format!(r#"{{"betId":"{bet}","betAmount":1}}"#);
            return self.call(players, Op::PayIn, session, Some(bet), body, OK, true);
        }
        if roll < 0.95 {
            let (session, bet) = self.take_open(rng);
            let win = WINS[rng.gen_range(0..WINS.len())];
            let body = format!(r#"{{"betId":"{bet}","winAmount":{win}}}"#);
            return self.call(players, Op::PayOut, session, Some(bet), body, OK, true);
        }
        if roll < 0.99 {
            let session = players.pick(rng);
            let path = format!("/v1/sessions/{}/balance", players.session(session));
            return Call {
                op: Op::Balance,
                path,
                body: None,
                expect: OK,
                moves_money: false,
                bet_id: None,
                session,
            };
        }
        // Refund: an open bet, or (retry) one not placed yet, which must then be refused.
        let (session, bet) = if self.scenario == Scenario::Retry || self.open.is_empty() {
            let session = players.pick(rng);
            let bet = self.bet_id();
            if self.scenario == Scenario::Retry {
                self.cancelled_first.push((session, bet.clone()));
            }
            (session, bet)
        } else {
            self.take_open(rng)
        };
        let body = format!(r#"{{"betId":"{bet}"}}"#);
        self.call(players, Op::Refund, session, Some(bet), body, OK, false)
    }

    fn take_open(&mut self, rng: &mut SmallRng) -> (usize, String) {
        let i = rng.gen_range(0..self.open.len());
        self.open.swap_remove(i)
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        players: &Players,
        op: Op,
        session: usize,
        bet_id: Option<String>,
        body: String,
        expect: &'static [i64],
        moves_money: bool,
    ) -> Call {
        let action = match op {
            Op::PayIn => "pay-in",
            Op::PayOut => "pay-out",
            Op::PayInOut => "pay-in-out",
            _ => "refund",
        };
        let call = Call {
            op,
            path: format!("/v1/sessions/{}/bets/{action}", players.session(session)),
            body: Some(body),
            expect,
            moves_money,
            bet_id,
            session,
        };
        self.last = Some(call.clone());
        call
    }

    /// Learns from an answer: a PayIn that failed leaves no open bet to pay out.
    pub fn observe(&mut self, call: &Call, code: i64) {
        if call.moves_money && code != 1 {
            // Only a call that was applied can be repeated for a 104.
            self.last = None;
        }
        if call.op == Op::PayIn && code != 1 {
            if let Some(bet) = &call.bet_id {
                self.open.retain(|(s, b)| !(*s == call.session && b == bet));
            }
        }
    }
}
