//! A circuit breaker per casino (contract section 4): after repeated transport failures new
//! debits are refused at once (nothing written or sent) for a while; credits keep queueing.
//! Counted once per HTTP exchange, whether it carried one leg or a `make-list` of many.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::casino::Exchange;

/// A circuit breaker per casino: consecutive transport failures open it for a while.
#[derive(Default)]
pub struct Breakers {
    by_operator: Mutex<HashMap<String, Breaker>>,
}

#[derive(Default, Clone, Copy)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// Transport failures in a row that open a casino's breaker, and for how long.
const BREAKER_FAILURES: u32 = 5;
const BREAKER_OPEN: Duration = Duration::from_secs(5);

impl Breakers {
    /// Whether new debits may be sent to the operator's casino now.
    pub fn allows(&self, operator: &str) -> bool {
        let map = self
            .by_operator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(operator)
            .and_then(|b| b.open_until)
            .is_none_or(|until| until <= Instant::now())
    }

    /// Counts an exchange: a transport failure, or an answer (which closes the breaker).
    pub fn count(&self, operator: &str, exchange: &Exchange) {
        let mut map = self
            .by_operator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let breaker = map.entry(operator.to_string()).or_default();
        if exchange.transport_failed() {
            breaker.failures += 1;
            if breaker.failures >= BREAKER_FAILURES {
                if breaker.open_until.is_none_or(|u| u <= Instant::now()) {
                    tracing::warn!(operator, "casino unreachable: new bets refused for a while");
                }
                breaker.open_until = Some(Instant::now() + BREAKER_OPEN);
            }
        } else {
            *breaker = Breaker::default();
        }
    }
}
