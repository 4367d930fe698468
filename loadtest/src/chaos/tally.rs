//! Counts kept by each virtual provider and added up at the end: answers by code, what
//! happened while each kind of fault was under way, and every departure from the model.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::faults::Fault;
use crate::client::Answer;

/// Attempts that ended while one kind of fault was under way (or while calm): from its start
/// until the answer bound after everything was back.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub attempts: u64,
    /// No HTTP answer (connection refused or dropped, or no answer in time).
    pub unanswered: u64,
    /// Answered 99: not decided, sent again.
    pub retryable: u64,
    /// Longest an attempt of a bet call waited for its HTTP answer.
    pub max_answer_ms: u64,
    /// Longest from a call's first attempt to its definite answer, for calls that met this
    /// fault (the last one under way while they were being decided).
    pub max_decide_ms: u64,
    /// Calls that met this fault and needed more than one attempt.
    pub retried_calls: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Calls decided, by kind.
    pub calls: BTreeMap<String, u64>,
    pub attempts: u64,
    /// Answers by `_responseCode` ("none" for no HTTP answer).
    pub codes: BTreeMap<String, u64>,
    /// By the fault under way when the attempt ended ("calm": none).
    pub during: BTreeMap<String, Window>,
    /// Definite answers other than the model expects.
    pub unexpected: u64,
    /// Balances answered that differ from the model.
    pub balance_off: u64,
    /// Bet calls answered later than the bound.
    pub late: u64,
    /// Calls still undecided when the run gave up.
    pub undecided: u64,
    /// The call that took longest to decide: its attempts (`sent at+took→code`).
    pub slowest_ms: u64,
    pub slowest: String,
    pub examples: Vec<String>,
}

impl Tally {
    /// Counts one attempt; returns whether it was a late bet call (never, with a zero bound).
    pub fn attempt(
        &mut self,
        fault: usize,
        answer: Option<&Answer>,
        took: Duration,
        is_bet: bool,
        bound: Duration,
    ) -> bool {
        self.attempts += 1;
        let code = answer.map_or("none".to_string(), |a| a.code.to_string());
        *self.codes.entry(code).or_default() += 1;
        let window = self.during.entry(Fault::name_of(fault).into()).or_default();
        window.attempts += 1;
        match answer {
            None => window.unanswered += 1,
            Some(a) if a.code == 99 => window.retryable += 1,
            Some(_) => {}
        }
        if !is_bet {
            return false;
        }
        let ms = took.as_millis() as u64;
        if answer.is_some() {
            window.max_answer_ms = window.max_answer_ms.max(ms);
        }
        // No answer at all within the attempt's limit counts as late too: the server was up
        // (a killed server refuses or drops at once).
        let late = !bound.is_zero() && took > bound;
        if late {
            self.late += 1;
        }
        late
    }

    /// Counts a call decided `took` after its first attempt, the last fault it met `fault`.
    pub fn decided(&mut self, fault: usize, took: Duration, retried: bool) {
        let window = self.during.entry(Fault::name_of(fault).into()).or_default();
        window.max_decide_ms = window.max_decide_ms.max(took.as_millis() as u64);
        if retried {
            window.retried_calls += 1;
        }
    }

    /// Keeps `trace` if this call took the longest yet to decide.
    pub fn slowest(&mut self, took: Duration, trace: impl FnOnce() -> String) {
        let ms = took.as_millis() as u64;
        if ms > self.slowest_ms {
            self.slowest_ms = ms;
            self.slowest = trace();
        }
    }

    pub fn call(&mut self, kind: &str) {
        *self.calls.entry(kind.into()).or_default() += 1;
    }

    pub fn example(&mut self, text: String) {
        if self.examples.len() < 5 {
            self.examples.push(text);
        }
    }

    pub fn absorb(&mut self, other: Tally) {
        for (k, v) in other.calls {
            *self.calls.entry(k).or_default() += v;
        }
        self.attempts += other.attempts;
        for (k, v) in other.codes {
            *self.codes.entry(k).or_default() += v;
        }
        for (k, w) in other.during {
            let mine = self.during.entry(k).or_default();
            mine.attempts += w.attempts;
            mine.unanswered += w.unanswered;
            mine.retryable += w.retryable;
            mine.max_answer_ms = mine.max_answer_ms.max(w.max_answer_ms);
            mine.max_decide_ms = mine.max_decide_ms.max(w.max_decide_ms);
            mine.retried_calls += w.retried_calls;
        }
        self.unexpected += other.unexpected;
        self.balance_off += other.balance_off;
        self.late += other.late;
        self.undecided += other.undecided;
        if other.slowest_ms > self.slowest_ms {
            self.slowest_ms = other.slowest_ms;
            self.slowest = other.slowest;
        }
        for e in other.examples {
            self.example(e);
        }
    }

    pub fn decided_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}
