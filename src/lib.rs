//! croupier: a game-aggregator wallet server.
//!
//! - `api`: the HTTP edge (wire types and handlers per audience);
//! - `auth`: request signing (HMAC over the raw body, timestamp window, nonces);
//! - `ledger`: the only code that moves money, one SQL function per operation;
//! - `money`: currencies and exact amounts;
//! - `db`: pool, migrations, the embedded PostgreSQL launcher;
//! - `seamless`: forwarding bets to a casino's own wallet (signed JWTs, legs, verdicts);
//! - `demo_casino`: a casino wallet for seamless tests, load and the demo;
//! - `telemetry`: metrics, the per-request span and access log, the log format;
//! - `admin`: onboarding without SQL; `cli`: the command line.

#[macro_use]
mod text_enum;

pub mod admin;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo_casino;
pub mod error;
pub mod ledger;
pub mod money;
pub mod players;
pub mod seamless;
pub mod startup;
pub mod telemetry;
