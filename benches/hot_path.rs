//! Microbenchmarks of the bet path's CPU work outside the database: signature verification,
//! amount parsing, request decoding and response encoding.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use croupier::api::provider::{pay_in_out, Answer};
use croupier::auth::{sign, Counterparty, Role};
use croupier::ledger::BetReceipt;
use croupier::money::{Amount, Currency};
use rust_decimal::Decimal;
use uuid::Uuid;

const BODY: &str = r#"{"betId":"4178696881","gameRoundId":"c5dfa465-93fc-4e8e-a643-954747f74ca1","betAmount":10.5,"winAmount":55.25,"winOdd":11.05}"#;
const CP: &str = "933a215f-a9e6-4f88-9d91-52a87cd50499";
const TS: &str = "1719766120806";
const RID: &str = "5a0679b6e5fa48f6892c777b0fa92392";

fn signature(c: &mut Criterion) {
    let secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let counterparty = Counterparty::new(CP.into(), Role::Provider, true, true, secret);
    let good = sign(secret.as_bytes(), Some(BODY.as_bytes()), CP, TS, RID);
    assert!(counterparty.verify(Some(BODY.as_bytes()), TS, RID, &good));
    c.bench_function("verify X-Sign (PayInOut body)", |b| {
        b.iter(|| counterparty.verify(black_box(Some(BODY.as_bytes())), TS, RID, black_box(&good)))
    });
}

fn amounts(c: &mut Criterion) {
    let usd = Currency::parse("USD").expect("USD");
    c.bench_function("parse amount 10.5 USD", |b| {
        b.iter(|| Amount::parse_json(black_box("10.5"), usd))
    });
    c.bench_function("parse amount \"1234567.89\" USD", |b| {
        b.iter(|| Amount::parse_json(black_box("\"1234567.89\""), usd))
    });
}

fn decode_encode(c: &mut Criterion) {
    let usd = Currency::parse("USD").expect("USD");
    c.bench_function("decode PayInOut request", |b| {
        b.iter(|| pay_in_out::decode(black_box(BODY.as_bytes()), usd).expect("valid"))
    });
    let receipt = BetReceipt {
        replayed: false,
        bet_tx: Some(Uuid::now_v7()),
        win_tx: Some(Uuid::now_v7()),
        refund_tx: None,
        balance: Decimal::new(158_850, 2),
    };
    c.bench_function("encode PayInOut answer", |b| {
        b.iter(|| serde_json::to_vec(&Answer::pay_in_out(black_box(&receipt))).expect("encodes"))
    });
}

criterion_group!(benches, signature, amounts, decode_encode);
criterion_main!(benches);
