//! Integration tests: the provider bet API and the admin verbs against a real PostgreSQL.
#![allow(clippy::unwrap_used)]

mod admin_cli;
mod bad_input;
mod batch;
mod concurrency;
mod crypto;
mod db_link;
mod db_tls;
mod demo_safety;
mod embedded_cluster;
mod fakes;
mod helpers;
mod logs;
mod openapi;
mod operator;
mod out_of_order;
mod response_codes;
mod schema;
mod seamless;
mod seamless_chaos;
mod seamless_flow;
mod seamless_lists;
mod seamless_rules;
