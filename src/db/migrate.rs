//! Numbered migrations from `sql/`, compiled into the binary and applied in order, each in
//! its own transaction. An advisory lock keeps two starting servers from racing.

use tokio_postgres::Client;

/// The migrations, in order. Never edit one that has shipped: add a new file.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "core", include_str!("../../sql/0001_core.sql")),
    (2, "ledger", include_str!("../../sql/0002_ledger.sql")),
    (3, "players", include_str!("../../sql/0003_players.sql")),
    (4, "crypto", include_str!("../../sql/0004_crypto.sql")),
    (
        5,
        "locked play",
        include_str!("../../sql/0005_locked_play.sql"),
    ),
];

/// Arbitrary constant naming croupier's migration lock.
const MIGRATION_LOCK: i64 = 0x6372_6f75_7069_6572;

/// Applies the migrations not yet applied. Returns how many were applied.
pub async fn run(client: &mut Client) -> anyhow::Result<usize> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await?
            .is_some();
        if !done {
            tx.batch_execute(sql)
                .await
                .map_err(|e| anyhow::anyhow!("migration {version} ({name}) failed: {e}"))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
            applied += 1;
        }
        tx.commit().await?;
    }
    Ok(applied)
}
