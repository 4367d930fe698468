//! The load-test players: `count` players of one operator (external ids `load-1` …
//! `load-N`), each with a funded wallet and an open session of the load-test provider, made in
//! a few set-based statements. Session ids are derived from the provider and the player's
//! number (`session_id_sql`), so a pgbench script names a player's session without a lookup.
//! This lives with the load tester: the production schema knows nothing of load players.

use rust_decimal::Decimal;
use tokio_postgres::Client;

/// SQL for the session id of load player `n` of provider `provider` (both SQL expressions):
/// deterministic, and made of immutable operators only, so pgbench pays no lookup for it.
pub fn session_id_sql(provider: &str, n: &str) -> String {
    format!("md5('load-session:' || {provider} || ':' || ({n})::text)::uuid")
}

/// Creates the players, wallets (funded through the ledger's own `transfer`, journaled) and
/// sessions, and returns the session ids in player order. Idempotent for players and wallets.
pub async fn create(
    client: &mut Client,
    operator: &str,
    provider: &str,
    count: i32,
    currency: &str,
    funds: Decimal,
) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(
        (1..=10_000_000).contains(&count),
        "count must be 1 to 10,000,000"
    );
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO players (id, operator_id, external_id)
         SELECT gen_random_uuid(), $1, 'load-' || n FROM generate_series(1, $2) n
         ON CONFLICT ON CONSTRAINT players_operator_external_unique DO NOTHING",
        &[&operator, &count],
    )
    .await?;
    tx.execute(
        "INSERT INTO wallets (id, player_id, currency)
         SELECT gen_random_uuid(), p.id, $3 FROM players p
          WHERE p.operator_id = $1 AND p.external_id = ANY
                (SELECT 'load-' || n FROM generate_series(1, $2) n)
         ON CONFLICT ON CONSTRAINT wallets_player_currency_unique DO NOTHING",
        &[&operator, &count, &currency],
    )
    .await?;
    // A seamless operator's players hold nothing here: no funding.
    if !funds.is_zero() {
        tx.execute(
            "SELECT count(*) FROM generate_series(1, $2) n,
                LATERAL transfer('deposit', $1, 'load-' || n, $3, $4,
                                 'load-funding-' || n || '-' || $5::text,
                                 gen_random_uuid(), gen_random_uuid())",
            &[
                &operator,
                &count,
                &currency,
                &funds,
                &uuid::Uuid::new_v4().to_string(),
            ],
        )
        .await?;
    }
    let sessions = tx
        .query(
            &format!(
                "INSERT INTO sessions (id, player_id, wallet_id, provider_id, game_id, expires_at)
                 SELECT {}, p.id, w.id, $3, 'load-game', now() + interval '7 days'
                   FROM generate_series(1, $2) n
                   JOIN players p ON p.operator_id = $1 AND p.external_id = 'load-' || n
                   JOIN wallets w ON w.player_id = p.id AND w.currency = $4
                 ORDER BY n
                 RETURNING id::text",
                session_id_sql("$3", "n")
            ),
            &[&operator, &count, &provider, &currency],
        )
        .await?;
    tx.commit().await?;
    Ok(sessions.iter().map(|r| r.get(0)).collect())
}
