//! Where a series' cycles went: the CPU time of PostgreSQL (the postmaster and every backend
//! and helper process under it), of the croupier server and of the load generator (pgbench,
//! or this process), over the series' measured window, from `/proc`.
//!
//! A backend that exits during the window is counted too: when the postmaster reaps it, its
//! time moves into the postmaster's `cutime`/`cstime`, which are part of the sum.

use std::time::Duration;

use serde::Serialize;

/// `/proc` reports times in USER_HZ, which Linux fixes at 100 for user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// The processes of a series.
#[derive(Debug, Clone, Copy)]
pub(super) struct Processes {
    pub postmaster: u32,
    pub server: Option<u32>,
    pub load_generator: u32,
}

/// CPU seconds used in a window.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuSeconds {
    pub postgres: f64,
    pub server: f64,
    pub load_generator: f64,
}

impl CpuSeconds {
    /// Microseconds of each per bet, for `bets` bets in the window.
    pub fn per_bet_us(&self, bets: f64) -> CpuSeconds {
        let per = |s: f64| if bets > 0.0 { s * 1e6 / bets } else { 0.0 };
        CpuSeconds {
            postgres: per(self.postgres),
            server: per(self.server),
            load_generator: per(self.load_generator),
        }
    }
}

/// (own utime + stime, reaped children's cutime + cstime, parent pid) of a process, in ticks.
fn stat(pid: u32) -> Option<(u64, u64, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some((n(11)? + n(12)?, n(13)? + n(14)?, n(1)? as u32))
}

/// Ticks used so far by the postmaster and everything under it.
fn postgres_ticks(postmaster: u32) -> u64 {
    let Some((own, reaped, _)) = stat(postmaster) else {
        return 0;
    };
    let children: u64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .filter(|&(_, _, ppid)| ppid == postmaster)
        .map(|(own, _, _)| own)
        .sum();
    own + reaped + children
}

fn own_ticks(pid: u32) -> u64 {
    stat(pid).map_or(0, |(own, _, _)| own)
}

#[derive(Clone, Copy)]
struct Sample {
    postgres: u64,
    server: u64,
    load_generator: u64,
}

fn sample(p: Processes) -> Sample {
    Sample {
        postgres: postgres_ticks(p.postmaster),
        server: p.server.map_or(0, own_ticks),
        load_generator: own_ticks(p.load_generator),
    }
}

/// Samples at the end of the warmup and again `seconds` later: the CPU of the window a
/// series measures.
pub(super) fn window(
    processes: Processes,
    warmup: u64,
    seconds: u64,
) -> tokio::task::JoinHandle<CpuSeconds> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(warmup)).await;
        let from = sample(processes);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let to = sample(processes);
        let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / TICKS_PER_SECOND;
        CpuSeconds {
            postgres: secs(from.postgres, to.postgres),
            server: secs(from.server, to.server),
            load_generator: secs(from.load_generator, to.load_generator),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read_and_its_time_grows_with_work() {
        let me = std::process::id();
        let (before, _, ppid) = stat(me).expect("own stat");
        assert!(ppid > 0);
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let (after, _, _) = stat(me).expect("own stat");
        assert!(after >= before + 10, "{before} → {after} ticks");
    }
}
