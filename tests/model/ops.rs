//! What the model test sends: each player's script of operations, and the proptest
//! strategies that generate them.

use proptest::collection::vec;
use proptest::prelude::*;

use crate::model::{Amount, Call};

/// Bet slots per player: few, so that ids are reused (repeats, conflicts, closed bets).
pub const BET_SLOTS: u8 = 16;
/// Transaction id slots per player.
pub const TX_SLOTS: u8 = 8;
/// The slot of the deposit that funds a player at the start.
pub const FUNDING_TX: u8 = 99;

#[derive(Clone, Debug)]
pub enum Op {
    Call(Call),
    /// The player's previous money call once more, written the other way.
    Again,
    /// The same call sent this many times at once: one applies, the others are repeats.
    Dup(u8, Call),
    /// Two calls on the same bet at once: the answers of one order or the other.
    Race(Call, Call),
}

/// One player: created through the operator API, funded, then its operations in order.
#[derive(Clone, Debug)]
pub struct Script {
    pub funds: Amount,
    pub ops: Vec<Op>,
}

/// Scripts to print: one line per operation.
pub fn listing(scripts: &[Script]) -> String {
    let mut text = String::new();
    for (i, s) in scripts.iter().enumerate() {
        text.push_str(&format!("script {i}: funded with {:?}\n", s.funds));
        for (j, op) in s.ops.iter().enumerate() {
            text.push_str(&format!("  op {j}: {op:?}\n"));
        }
    }
    text
}

fn amount(cents: &'static [i64]) -> impl Strategy<Value = Amount> {
    (proptest::sample::select(cents), any::<bool>())
        .prop_map(|(cents, plain)| Amount { cents, plain })
}

fn stake() -> impl Strategy<Value = Amount> {
    amount(&[0, 100, 250, 1_000, 1_050, 5_000, 20_000])
}

fn win() -> impl Strategy<Value = Amount> {
    amount(&[0, 0, 50, 1_000, 2_575, 30_000])
}

fn round() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![3 => Just(None), 1 => (0..2u8).prop_map(Some)]
}

/// A bet call on `bet`.
fn bet_call(bet: u8) -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => (round(), stake()).prop_map(move |(round, stake)| Call::PayIn { bet, round, stake }),
        3 => win().prop_map(move |win| Call::PayOut { bet, win }),
        3 => (round(), stake(), win()).prop_map(move |(round, stake, win)| Call::PayInOut {
            bet,
            round,
            stake,
            win
        }),
        2 => any::<bool>().prop_map(move |plain| Call::Refund { bet, plain }),
    ]
}

fn transfer_call() -> impl Strategy<Value = Call> {
    let deposits = amount(&[0, 1_000, 2_500, 5_000, 10_000, 25_000]);
    let withdrawals = amount(&[100, 1_000, 5_000, 50_000]);
    prop_oneof![
        (0..TX_SLOTS, deposits).prop_map(|(tx, amount)| Call::Deposit { tx, amount }),
        (0..TX_SLOTS, withdrawals).prop_map(|(tx, amount)| Call::Withdraw { tx, amount }),
    ]
}

/// A call that moves money (or is refused trying).
fn money_call() -> impl Strategy<Value = Call> {
    prop_oneof![
        6 => (0..BET_SLOTS).prop_flat_map(bet_call),
        1 => transfer_call(),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        24 => money_call(),
        2 => Just(Call::Balance),
        2 => Just(Call::WalletBalance),
        2 => (0..TX_SLOTS).prop_map(|tx| Call::CheckTx { tx }),
        1 => Just(Call::Create),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => call().prop_map(Op::Call),
        4 => Just(Op::Again),
        3 => (2..=4u8, money_call()).prop_map(|(n, c)| Op::Dup(n, c)),
        3 => (0..BET_SLOTS)
            .prop_flat_map(|bet| (bet_call(bet), bet_call(bet)))
            .prop_map(|(a, b)| Op::Race(a, b)),
    ]
}

fn script(ops: usize) -> impl Strategy<Value = Script> {
    let funds = amount(&[0, 1_000, 10_000, 100_000]);
    (funds, vec(op(), 1..=ops * 2)).prop_map(|(funds, ops)| Script { funds, ops })
}

/// A case: about `players` scripts of about `ops` operations each (up to twice as many, down
/// to one when a failure is shrunk), run side by side.
pub fn case(players: usize, ops: usize) -> impl Strategy<Value = Vec<Script>> {
    vec(script(ops), 1..=players * 2)
}
