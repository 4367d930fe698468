//! The ledger checked against a model: random scripts of provider and operator calls
//! (repeats, conflicts, out-of-order refunds, concurrent duplicates and races), many players
//! side by side, every answer, every balance and `reconcile` held to the README's rules as
//! `model.rs` states them. Group commit on and off, both in one run.
//!
//! `CROUPIER_MODEL_OPS` (default 100000): calls in all, half in each mode.
//! `CROUPIER_MODEL_SEED`: the seed of the scripts (printed at the start of each mode).
//! `CROUPIER_MODEL_PLAYERS` (default 32): players side by side in a case, on average.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod driver;
mod model;
mod ops;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use croupier::ledger::BatchSettings;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::driver::Tally;
use crate::helpers::{spawn_app_with, TestApp};

/// Operations per player, on average.
const OPS: usize = 40;
/// Cases between two reconciles: at least this many, and more as the ledger grows (a
/// reconcile reads all of it).
const CASES_PER_ROUND: u64 = 64;

#[test]
fn the_ledger_follows_the_model_with_group_commit() {
    run(Some(BatchSettings::default()), "group commit", 1);
}

#[test]
fn the_ledger_follows_the_model_with_one_transaction_per_bet() {
    run(None, "one transaction per bet", 2);
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {text}")),
    )
}

/// The scripts of a round: a function of the seed, the mode and the round only.
fn rng(seed: u64, mode: u64, round: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&mode.to_le_bytes());
    bytes[16..24].copy_from_slice(&round.to_le_bytes());
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// One seed for the whole run, both modes.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| env_number("CROUPIER_MODEL_SEED").unwrap_or_else(rand::random))
}

fn run(batching: Option<BatchSettings>, mode: &str, mode_salt: u64) {
    let target = env_number("CROUPIER_MODEL_OPS").unwrap_or(100_000) / 2;
    let seed = seed();
    let players = env_number("CROUPIER_MODEL_PLAYERS").map_or(32, |n| n.max(1) as usize);
    eprintln!("model, {mode}: {target} calls, CROUPIER_MODEL_SEED={seed}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let app = rt.block_on(spawn_app_with(batching));
    let (calls, tally) = (AtomicU64::new(0), Tally::default());
    let (started, mut cases, mut round) = (Instant::now(), 0u64, 0u64);
    while calls.load(Ordering::Relaxed) < target {
        let done = calls.load(Ordering::Relaxed);
        let per_case = done.checked_div(cases).unwrap_or((players * OPS) as u64);
        let round_cases =
            ((target - done) / per_case.max(1) + 1).min(CASES_PER_ROUND.max(cases / 4));
        run_round(
            &rt,
            (&app, &tally),
            (seed, mode_salt, round),
            (players, round_cases),
            &calls,
        );
        let reconciling = Instant::now();
        rt.block_on(reconcile(&app));
        let reconcile_ms = reconciling.elapsed().as_millis();
        cases += round_cases;
        round += 1;
        let (n, secs) = (
            calls.load(Ordering::Relaxed),
            started.elapsed().as_secs_f64(),
        );
        eprintln!(
            "model, {mode}: {n} calls in {cases} cases, {secs:.0} s, {:.0} calls/s, reconcile clean ({reconcile_ms} ms)",
            n as f64 / secs
        );
    }
    let tally = tally.into_inner().expect("tally");
    let lines: Vec<String> = tally.iter().map(|(k, v)| format!("  {k}: {v}")).collect();
    eprintln!(
        "model, {mode}: answers by call and code\n{}",
        lines.join("\n")
    );
}

/// `croupier admin reconcile` finds nothing wrong. Run as the verb runs it, with no statement
/// limit (the app's own pool has the server's 2 s): the ledger grows large here.
async fn reconcile(app: &TestApp) {
    let pool = croupier::db::pool(&app.database_url, 1, croupier::db::Limits::unlimited())
        .expect("a pool for reconcile");
    let report = croupier::admin::Admin::new(pool)
        .reconcile()
        .await
        .expect("reconcile runs");
    assert!(report.ok, "reconcile found mismatches: {report:?}");
}

/// `cases` cases through proptest; a failure is shrunk and printed with its scripts.
fn run_round(
    rt: &tokio::runtime::Runtime,
    (app, tally): (&TestApp, &Tally),
    (seed, mode, round): (u64, u64, u64),
    (players, cases): (usize, u64),
    calls: &AtomicU64,
) {
    let config = Config {
        cases: u32::try_from(cases).expect("a round's cases fit u32"),
        failure_persistence: None,
        max_shrink_iters: 20_000,
        max_shrink_time: 300_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng(seed, mode, round));
    let outcome = runner.run(&ops::case(players, OPS), |scripts| {
        let n = rt
            .block_on(driver::run_case(app, tally, &scripts))
            .map_err(TestCaseError::fail)?;
        calls.fetch_add(n, Ordering::Relaxed);
        Ok(())
    });
    match outcome {
        Ok(()) => {}
        Err(TestError::Fail(why, scripts)) => panic!(
            "the server left the model (CROUPIER_MODEL_SEED={seed}, round {round}):\n{why}\n\n\
             smallest failing case found, one script per player:\n{}",
            ops::listing(&scripts)
        ),
        Err(TestError::Abort(why)) => panic!("proptest gave up: {why}"),
    }
}
