//! The README's rules for one player, in memory: the wallet, the bets by `betId` and the
//! transfers by `transactionId`. `apply` predicts the answer of one call and moves the model
//! as the server must; `learn` keeps the transaction ids the server handed out, so that a
//! repeat can be held to them.

use std::collections::BTreeMap;
use std::fmt;

/// Money in cents (the model plays in USD, two decimals).
pub type Cents = i64;

/// An amount as sent: `plain` writes a JSON number (`10.50`), otherwise a string with an
/// extra trailing zero (`"10.500"`), which the rules say is the same amount.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub cents: Cents,
    pub plain: bool,
}

impl Amount {
    pub fn json(self) -> String {
        let text = format!("{}.{:02}", self.cents / 100, self.cents % 100);
        if self.plain {
            text
        } else {
            format!("\"{text}0\"")
        }
    }

    pub fn flipped(self) -> Self {
        Self {
            plain: !self.plain,
            ..self
        }
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.json())
    }
}

/// One API call of a player. Bets and transfers are named by small slots, so that a script
/// reuses them: repeats, conflicts and calls on closed bets come up all the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Balance,
    PayIn {
        bet: u8,
        round: Option<u8>,
        stake: Amount,
    },
    PayOut {
        bet: u8,
        win: Amount,
    },
    PayInOut {
        bet: u8,
        round: Option<u8>,
        stake: Amount,
        win: Amount,
    },
    /// `plain`: the betId as a JSON number, else as a string.
    Refund {
        bet: u8,
        plain: bool,
    },
    Create,
    Deposit {
        tx: u8,
        amount: Amount,
    },
    Withdraw {
        tx: u8,
        amount: Amount,
    },
    WalletBalance,
    CheckTx {
        tx: u8,
    },
}

impl Call {
    /// A call that may change the books (what `Again` repeats).
    pub fn moves_money(&self) -> bool {
        !matches!(
            self,
            Call::Balance | Call::Create | Call::WalletBalance | Call::CheckTx { .. }
        )
    }

    /// The same call written the other way (ids and amounts as numbers or strings).
    pub fn flipped(&self) -> Call {
        match self.clone() {
            Call::PayIn { bet, round, stake } => Call::PayIn {
                bet,
                round,
                stake: stake.flipped(),
            },
            Call::PayOut { bet, win } => Call::PayOut {
                bet,
                win: win.flipped(),
            },
            Call::PayInOut {
                bet,
                round,
                stake,
                win,
            } => Call::PayInOut {
                bet,
                round,
                stake: stake.flipped(),
                win: win.flipped(),
            },
            Call::Refund { bet, plain } => Call::Refund { bet, plain: !plain },
            Call::Deposit { tx, amount } => Call::Deposit {
                tx,
                amount: amount.flipped(),
            },
            Call::Withdraw { tx, amount } => Call::Withdraw {
                tx,
                amount: amount.flipped(),
            },
            other => other,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Call::Balance => "Balance",
            Call::PayIn { .. } => "PayIn",
            Call::PayOut { .. } => "PayOut",
            Call::PayInOut { .. } => "PayInOut",
            Call::Refund { .. } => "Refund",
            Call::Create => "Create",
            Call::Deposit { .. } => "Deposit",
            Call::Withdraw { .. } => "Withdraw",
            Call::WalletBalance => "WalletBalance",
            Call::CheckTx { .. } => "CheckTx",
        }
    }

    pub fn bet(&self) -> Option<u8> {
        match self {
            Call::PayIn { bet, .. }
            | Call::PayOut { bet, .. }
            | Call::PayInOut { bet, .. }
            | Call::Refund { bet, .. } => Some(*bet),
            _ => None,
        }
    }
}

/// What an answer says, apart from transaction ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// `_responseCode` (bet API) or `code` (operator API).
    pub code: i64,
    pub balance: Option<Cents>,
    pub detail: Detail,
}

/// The fields particular to a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    None,
    Created(bool),
    Withdrawable(Cents),
    Moved(Cents),
    Transfer {
        kind: &'static str,
        status: &'static str,
        refusal: Option<i64>,
        amount: Cents,
    },
}

/// The transaction ids an answer must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ids {
    None,
    /// New ones (this many), which the model then keeps.
    Learn(usize),
    /// The ones handed out when the call was first applied.
    Known(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub answer: Answer,
    pub ids: Ids,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    PayIn,
    PayInOut,
    Standalone,
    Tombstone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Open,
    Settled,
    Refunded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Bet {
    kind: Kind,
    round: Option<u8>,
    stake: Cents,
    win: Option<Cents>,
    state: State,
    bet_tx: Option<String>,
    win_tx: Option<String>,
    refund_tx: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Transfer {
    deposit: bool,
    amount: Cents,
    /// The remembered refusal (102).
    refusal: Option<i64>,
    balance_after: Cents,
    reference: Option<String>,
}

/// One player's books as the rules say they must be.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wallet {
    pub exists: bool,
    pub balance: Cents,
    /// Journal rows of the wallet: one per leg posted.
    pub rows: i64,
    bets: BTreeMap<u8, Bet>,
    transfers: BTreeMap<u8, Transfer>,
}

fn answer(code: i64, balance: Option<Cents>, ids: Ids) -> Expect {
    Expect {
        answer: Answer {
            code,
            balance,
            detail: Detail::None,
        },
        ids,
    }
}

fn refused(code: i64) -> Expect {
    answer(code, None, Ids::None)
}

/// Known ids, or new ones to learn if the model has not seen them (it always has, unless a
/// race left it unsure which call came first).
fn known(ids: &[&Option<String>]) -> Ids {
    match ids
        .iter()
        .map(|id| (*id).clone())
        .collect::<Option<Vec<_>>>()
    {
        Some(ids) => Ids::Known(ids),
        None => Ids::Learn(ids.len()),
    }
}

impl Wallet {
    /// The state of a bet slot as the `bets` table names it (None: no row).
    pub fn bet_state(&self, bet: u8) -> Option<&'static str> {
        self.bets.get(&bet).map(|b| match (b.kind, b.state) {
            (Kind::Tombstone, _) => "tombstone",
            (_, State::Open) => "open",
            (_, State::Settled) => "settled",
            (_, State::Refunded) => "refunded",
        })
    }

    /// The answer the rules give to `call`, the model moved as the server must move.
    pub fn apply(&mut self, call: &Call) -> Expect {
        match call {
            Call::Balance => answer(1, Some(self.balance), Ids::None),
            Call::PayIn { bet, round, stake } => self.place(*bet, *round, stake.cents, None),
            Call::PayInOut {
                bet,
                round,
                stake,
                win,
            } => self.place(*bet, *round, stake.cents, Some(win.cents)),
            Call::PayOut { bet, win } => self.pay_out(*bet, win.cents),
            Call::Refund { bet, .. } => self.refund(*bet),
            Call::Create => self.create(),
            Call::Deposit { tx, amount } => self.transfer(*tx, true, amount.cents),
            Call::Withdraw { tx, amount } => self.transfer(*tx, false, amount.cents),
            Call::WalletBalance => Expect {
                answer: Answer {
                    code: 0,
                    balance: Some(self.balance),
                    detail: Detail::Withdrawable(self.balance),
                },
                ids: Ids::None,
            },
            Call::CheckTx { tx } => self.check(*tx),
        }
    }

    /// PayIn (`win` None) and PayInOut.
    fn place(&mut self, slot: u8, round: Option<u8>, stake: Cents, win: Option<Cents>) -> Expect {
        let kind = if win.is_some() {
            Kind::PayInOut
        } else {
            Kind::PayIn
        };
        if let Some(b) = self.bets.get(&slot) {
            return if b.state == State::Refunded {
                refused(6)
            } else if b.kind == kind
                && b.round == round
                && b.stake == stake
                && (kind == Kind::PayIn || b.win == win)
            {
                // The same first call (a PayIn's later win is not part of it).
                let ids = match kind {
                    Kind::PayInOut => known(&[&b.bet_tx, &b.win_tx]),
                    _ => known(&[&b.bet_tx]),
                };
                answer(104, Some(self.balance), ids)
            } else {
                refused(9)
            };
        }
        if self.balance < stake {
            return refused(2);
        }
        self.balance += win.unwrap_or(0) - stake;
        self.rows += if win.is_some() { 2 } else { 1 };
        self.bets.insert(
            slot,
            Bet {
                kind,
                round,
                stake,
                win,
                state: if win.is_some() {
                    State::Settled
                } else {
                    State::Open
                },
                bet_tx: None,
                win_tx: None,
                refund_tx: None,
            },
        );
        let new = if win.is_some() { 2 } else { 1 };
        answer(1, Some(self.balance), Ids::Learn(new))
    }

    fn pay_out(&mut self, slot: u8, win: Cents) -> Expect {
        match self.bets.get_mut(&slot) {
            None => {
                self.bets.insert(
                    slot,
                    Bet {
                        kind: Kind::Standalone,
                        round: None,
                        stake: 0,
                        win: Some(win),
                        state: State::Settled,
                        bet_tx: None,
                        win_tx: None,
                        refund_tx: None,
                    },
                );
            }
            Some(b) => match b.state {
                State::Refunded => return refused(6),
                State::Settled if b.win == Some(win) => {
                    return answer(104, Some(self.balance), known(&[&b.win_tx]));
                }
                State::Settled => return refused(9),
                State::Open => {
                    b.win = Some(win);
                    b.state = State::Settled;
                }
            },
        }
        self.balance += win;
        self.rows += 1;
        answer(1, Some(self.balance), Ids::Learn(1))
    }

    fn refund(&mut self, slot: u8) -> Expect {
        let Some(b) = self.bets.get_mut(&slot) else {
            self.bets.insert(
                slot,
                Bet {
                    kind: Kind::Tombstone,
                    round: None,
                    stake: 0,
                    win: None,
                    state: State::Refunded,
                    bet_tx: None,
                    win_tx: None,
                    refund_tx: None,
                },
            );
            return answer(1, Some(self.balance), Ids::Learn(1));
        };
        match b.state {
            State::Refunded => answer(104, Some(self.balance), known(&[&b.refund_tx])),
            State::Open => {
                b.state = State::Refunded;
                self.balance += b.stake;
                self.rows += 1;
                answer(1, Some(self.balance), Ids::Learn(1))
            }
            State::Settled => {
                let change = b.stake - b.win.unwrap_or(0);
                if self.balance + change < 0 {
                    return refused(2);
                }
                b.state = State::Refunded;
                self.balance += change;
                self.rows += 2;
                answer(1, Some(self.balance), Ids::Learn(1))
            }
        }
    }

    fn create(&mut self) -> Expect {
        let created = !self.exists;
        self.exists = true;
        Expect {
            answer: Answer {
                code: 0,
                balance: Some(self.balance),
                detail: Detail::Created(created),
            },
            ids: Ids::None,
        }
    }

    /// Deposit or withdrawal, idempotent by transaction id.
    fn transfer(&mut self, slot: u8, deposit: bool, amount: Cents) -> Expect {
        if amount <= 0 {
            return refused(100); // a bad value: nothing recorded, the id stays free
        }
        if let Some(t) = self.transfers.get(&slot) {
            if t.deposit != deposit || t.amount != amount {
                return refused(100);
            }
            if let Some(code) = t.refusal {
                return refused(code);
            }
            return moved(t.balance_after, amount, known(&[&t.reference]));
        }
        let refusal = (!deposit && self.balance < amount).then_some(102);
        if refusal.is_none() {
            self.balance += if deposit { amount } else { -amount };
            self.rows += 1;
        }
        self.transfers.insert(
            slot,
            Transfer {
                deposit,
                amount,
                refusal,
                balance_after: self.balance,
                reference: None,
            },
        );
        match refusal {
            Some(code) => refused(code),
            None => moved(self.balance, amount, Ids::Learn(1)),
        }
    }

    fn check(&self, slot: u8) -> Expect {
        let Some(t) = self.transfers.get(&slot) else {
            return refused(100);
        };
        Expect {
            answer: Answer {
                code: 0,
                balance: Some(t.balance_after),
                detail: Detail::Transfer {
                    kind: if t.deposit { "deposit" } else { "withdrawal" },
                    status: if t.refusal.is_some() {
                        "refused"
                    } else {
                        "completed"
                    },
                    refusal: t.refusal,
                    amount: t.amount,
                },
            },
            ids: known(&[&t.reference]),
        }
    }

    /// Keeps the ids of a call the model expected new ids from.
    pub fn learn(&mut self, call: &Call, ids: &[String]) {
        let first = ids.first().cloned();
        match call {
            Call::PayIn { bet, .. } | Call::PayInOut { bet, .. } | Call::PayOut { bet, .. } => {
                if let Some(b) = self.bets.get_mut(bet) {
                    match call {
                        Call::PayIn { .. } => b.bet_tx = first,
                        Call::PayOut { .. } => b.win_tx = first,
                        _ => {
                            b.bet_tx = first;
                            b.win_tx = ids.get(1).cloned();
                        }
                    }
                }
            }
            Call::Refund { bet, .. } => {
                if let Some(b) = self.bets.get_mut(bet) {
                    b.refund_tx = first;
                }
            }
            Call::Deposit { tx, .. } | Call::Withdraw { tx, .. } | Call::CheckTx { tx } => {
                if let Some(t) = self.transfers.get_mut(tx) {
                    t.reference = first;
                }
            }
            _ => {}
        }
    }
}

fn moved(balance: Cents, amount: Cents, ids: Ids) -> Expect {
    Expect {
        answer: Answer {
            code: 0,
            balance: Some(balance),
            detail: Detail::Moved(amount),
        },
        ids,
    }
}

/// The HTTP status that goes with a code of the bet API (`provider`) or the operator API.
pub fn http_status(provider: bool, code: i64) -> u16 {
    match (provider, code) {
        (true, 1 | 104) => 200,
        (true, 8) => 401,
        (true, _) => 402,
        (false, 0) => 200,
        (false, 1) => 500,
        (false, _) => 202,
    }
}
