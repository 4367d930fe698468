//! The chaos run's summary lines.

use super::Outcome;

pub fn print(o: &Outcome) {
    let t = &o.tally;
    println!(
        "chaos: {} s, {} players, {} connections, seed {}",
        o.seconds, o.players, o.connections, o.seed
    );
    println!(
        "calls: {} decided in {} attempts ({})",
        t.decided_calls(),
        t.attempts,
        join(t.calls.iter())
    );
    println!("answers by code: {}", join(t.codes.iter()));
    let faults: Vec<String> = o
        .faults
        .iter()
        .map(|f| {
            format!(
                "{} at {:.0}s ({:.1} s)",
                f.fault.name(),
                f.at_s,
                f.restored_after_ms as f64 / 1000.0
            )
        })
        .collect();
    println!("faults: {} — {}", o.faults.len(), faults.join(", "));
    println!(
        "server starts: {} ({} unplanned exits); proxy: {} connections, {} reset, {} bytes dropped",
        o.server_starts,
        o.unplanned_server_exits,
        o.proxy_connections,
        o.proxy_resets,
        o.proxy_bytes_dropped
    );
    println!(
        "{:<11} {:>9} {:>10} {:>9} {:>13} {:>13} {:>8}",
        "during", "attempts", "unanswered", "99", "max answer ms", "max decide ms", "retried"
    );
    for (name, w) in &t.during {
        println!(
            "{:<11} {:>9} {:>10} {:>9} {:>13} {:>13} {:>8}",
            name,
            w.attempts,
            w.unanswered,
            w.retryable,
            w.max_answer_ms,
            w.max_decide_ms,
            w.retried_calls
        );
    }
    let b = &o.books;
    println!(
        "books: {} balances checked, {} off; {} bets checked, {} off, {} unknown to the model; \
         {} acknowledged calls, {} missing from the journal; reconcile {}",
        b.balances_checked,
        b.balance_mismatches,
        b.bets_checked,
        b.bet_mismatches,
        b.bets_unknown_to_model,
        b.acknowledged_calls,
        b.missing_from_journal,
        if b.reconcile_ok { "ok" } else { "FAILED" }
    );
    let late = match o.answer_bound_ms {
        0 => "answer times not checked".to_string(),
        bound => format!("{} bet calls answered later than {bound} ms", t.late),
    };
    println!(
        "during the load: {} unexpected answers, {} balances answered off the model, {late}, \
         {} calls undecided",
        t.unexpected, t.balance_off, t.undecided
    );
    println!("slowest call: {} ms: {}", t.slowest_ms, t.slowest);
    for e in t.examples.iter().chain(b.examples.iter()) {
        println!("  {e}");
    }
    println!("mismatches: {}", o.failures());
}

fn join<'a>(counts: impl Iterator<Item = (&'a String, &'a u64)>) -> String {
    counts
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
