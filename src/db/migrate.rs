//! The schema, in two layers, compiled into the binary and applied in one transaction under
//! an advisory lock (two starting servers never race):
//!
//! 1. Numbered migrations from `sql/`: tables, indexes, constraints and data changes, applied
//!    once each, in order. Each is checksummed when applied; a shipped migration that was
//!    edited afterwards is refused at start, since the database no longer matches the file.
//! 2. The functions layer from `sql/functions/`: every function, trigger function, trigger
//!    and composite type, defined once. Whenever the files' combined checksum differs from the
//!    one recorded, every function, standalone composite type and trigger of the `public`
//!    schema is dropped and the files are run again, so the live definition is always the one
//!    in the file (the replaceable-schema pattern). Objects that depend on a function (a
//!    column default, a CHECK, an index) make the drop fail loudly rather than vanish.

use sha2::{Digest, Sha256};
use tokio_postgres::{Client, Transaction};

/// A numbered migration: its version, a name, its SQL.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

const fn migration(version: i32, name: &'static str, sql: &'static str) -> Migration {
    Migration { version, name, sql }
}

/// The numbered migrations, in order. Never edit one that has shipped: add a new file.
pub const MIGRATIONS: &[Migration] = &[
    migration(1, "core", include_str!("../../sql/0001_core.sql")),
    migration(2, "ledger", include_str!("../../sql/0002_ledger.sql")),
    migration(3, "players", include_str!("../../sql/0003_players.sql")),
    migration(4, "crypto", include_str!("../../sql/0004_crypto.sql")),
    migration(
        5,
        "locked play",
        include_str!("../../sql/0005_locked_play.sql"),
    ),
    migration(
        6,
        "functions layer",
        include_str!("../../sql/0006_functions_layer.sql"),
    ),
    migration(
        7,
        "crypto customer claims",
        include_str!("../../sql/0007_crypto_customer_claims.sql"),
    ),
    migration(8, "seamless", include_str!("../../sql/0008_seamless.sql")),
    migration(
        9,
        "seamless_hot_tables",
        include_str!("../../sql/0009_seamless_hot_tables.sql"),
    ),
    migration(
        10,
        "seamless_leg_indexes",
        include_str!("../../sql/0010_seamless_leg_indexes.sql"),
    ),
    migration(
        11,
        "request_nonces",
        include_str!("../../sql/0011_request_nonces.sql"),
    ),
    migration(
        12,
        "treasuries",
        include_str!("../../sql/0012_treasuries.sql"),
    ),
    migration(
        13,
        "wallet_pages",
        include_str!("../../sql/0013_wallet_pages.sql"),
    ),
];

/// The functions layer, in the order it is created: a file may use what an earlier one
/// defines (types before the functions that return them).
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("triggers", include_str!("../../sql/functions/triggers.sql")),
    ("ledger", include_str!("../../sql/functions/ledger.sql")),
    ("bets", include_str!("../../sql/functions/bets.sql")),
    (
        "transfers",
        include_str!("../../sql/functions/transfers.sql"),
    ),
    (
        "crypto_reviews",
        include_str!("../../sql/functions/crypto_reviews.sql"),
    ),
    (
        "crypto_deposits",
        include_str!("../../sql/functions/crypto_deposits.sql"),
    ),
    (
        "crypto_payouts",
        include_str!("../../sql/functions/crypto_payouts.sql"),
    ),
    ("seamless", include_str!("../../sql/functions/seamless.sql")),
    (
        "seamless_batch",
        include_str!("../../sql/functions/seamless_batch.sql"),
    ),
];

/// Arbitrary constant naming croupier's migration lock.
const MIGRATION_LOCK: i64 = 0x6372_6f75_7069_6572;

/// Drops what the functions layer owns: every function and procedure of `public` that no
/// extension owns, the triggers that run one of them, and every standalone composite type of
/// `public`. Without CASCADE: anything else that depends on one of them stops the migration.
/// The tables with such triggers are locked first, all in one statement, so that the drops
/// never wait on a bet half-way through and deadlock with it.
const DROP_FUNCTIONS_LAYER: &str = "
DO $$
DECLARE
    r record;
BEGIN
    CREATE TEMP TABLE owned_triggers ON COMMIT DROP AS
        SELECT t.tgname, t.tgrelid::regclass AS tbl
          FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE p.pronamespace = 'public'::regnamespace AND NOT t.tgisinternal
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                              AND d.deptype = 'e');
    IF EXISTS (SELECT 1 FROM owned_triggers) THEN
        EXECUTE (SELECT 'LOCK TABLE ' || string_agg(DISTINCT tbl::text, ', ' ORDER BY tbl::text)
                        || ' IN ACCESS EXCLUSIVE MODE'
                   FROM owned_triggers);
    END IF;
    FOR r IN SELECT tgname, tbl FROM owned_triggers LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.tbl);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS signature, p.prokind
               FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace
                AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                 WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                   AND d.deptype = 'e') LOOP
        EXECUTE format('DROP %s %s',
                       CASE r.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
                                      ELSE 'FUNCTION' END,
                       r.signature);
    END LOOP;
    FOR r IN SELECT t.oid::regtype AS name
               FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid
              WHERE t.typnamespace = 'public'::regnamespace AND t.typtype = 'c'
                AND c.relkind = 'c'
                AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                 WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                                   AND d.deptype = 'e') LOOP
        EXECUTE format('DROP TYPE %s', r.name);
    END LOOP;
END
$$";

/// What one run changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Numbered migrations applied.
    pub migrations: usize,
    /// Whether the functions layer was (re)created.
    pub functions: bool,
}

/// Applies the numbered migrations not yet applied, then re-creates the functions layer if it
/// changed, all in one transaction.
pub async fn run(client: &mut Client) -> anyhow::Result<Applied> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // IF [NOT] EXISTS answers with a NOTICE each time; they are expected, not news. A lock
    // the migration cannot have within seconds (busy tables on a live database) fails the
    // start rather than stalling every bet queued behind it; the next start tries again.
    tx.batch_execute(
        "SET LOCAL client_min_messages = warning;
         SET LOCAL lock_timeout = '5s';
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now());
         -- Migrations applied before checksums were kept get theirs on the next start.
         ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text;
         CREATE TABLE IF NOT EXISTS schema_functions (
             singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
             checksum   text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now());",
    )
    .await?;
    let migrations = apply_migrations(&tx).await?;
    let functions = apply_functions(&tx).await?;
    tx.commit().await?;
    Ok(Applied {
        migrations,
        functions,
    })
}

/// Checks the applied migrations against their files and applies the others, in order.
async fn apply_migrations(tx: &Transaction<'_>) -> anyhow::Result<usize> {
    // An older build must not run on a newer schema: it would put its older functions back.
    let newest: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if newest > known {
        anyhow::bail!(
            "this database has migration {newest}, newer than this build knows (up to \
             {known}): run the croupier that migrated it, or a newer one"
        );
    }
    let mut applied = 0;
    for m in MIGRATIONS {
        let checksum = checksum([m.sql]);
        let row = tx
            .query_opt(
                "SELECT checksum FROM schema_migrations WHERE version = $1",
                &[&m.version],
            )
            .await?;
        match row.map(|r| r.get::<_, Option<String>>(0)) {
            Some(Some(recorded)) if recorded != checksum => anyhow::bail!(
                "migration {} ({}) was edited after it was applied to this database \
                 (checksum {} recorded, {} in this build): put the change in a new migration",
                m.version,
                m.name,
                short(&recorded),
                short(&checksum)
            ),
            Some(Some(_)) => {}
            Some(None) => {
                tx.execute(
                    "UPDATE schema_migrations SET checksum = $2 WHERE version = $1",
                    &[&m.version, &checksum],
                )
                .await?;
            }
            None => {
                tx.batch_execute(m.sql).await.map_err(|e| {
                    anyhow::anyhow!(
                        "migration {} ({}) failed: {}",
                        m.version,
                        m.name,
                        db_message(&e)
                    )
                })?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    &[&m.version, &m.name, &checksum],
                )
                .await?;
                applied += 1;
            }
        }
    }
    Ok(applied)
}

/// Re-creates the functions layer when its files differ from what the database has.
async fn apply_functions(tx: &Transaction<'_>) -> anyhow::Result<bool> {
    let checksum = checksum(FUNCTIONS.iter().flat_map(|(name, sql)| [*name, *sql]));
    let recorded: Option<String> = tx
        .query_opt("SELECT checksum FROM schema_functions", &[])
        .await?
        .map(|r| r.get(0));
    if recorded.as_deref() == Some(checksum.as_str()) {
        return Ok(false);
    }
    tx.batch_execute(DROP_FUNCTIONS_LAYER)
        .await
        .map_err(|e| anyhow::anyhow!("dropping the functions layer failed: {}", db_message(&e)))?;
    for (name, sql) in FUNCTIONS {
        tx.batch_execute(sql)
            .await
            .map_err(|e| anyhow::anyhow!("sql/functions/{name}.sql failed: {}", db_message(&e)))?;
    }
    tx.execute(
        "INSERT INTO schema_functions (checksum) VALUES ($1)
         ON CONFLICT (singleton) DO UPDATE SET checksum = excluded.checksum, applied_at = now()",
        &[&checksum],
    )
    .await?;
    Ok(true)
}

/// SHA-256 over the parts, each preceded by its length so that no two lists of parts share a
/// checksum.
fn checksum<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// The server's message (and where it points) rather than tokio-postgres's "db error".
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.where_() {
            Some(place) => format!("{} ({place})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_migrations_define_no_function() {
        for m in MIGRATIONS {
            let upper = m.sql.to_uppercase();
            for word in [
                "CREATE FUNCTION",
                "CREATE OR REPLACE FUNCTION",
                "CREATE TYPE",
                "CREATE TRIGGER",
            ] {
                assert!(
                    !upper.contains(word),
                    "migration {} ({}) has {word}: it belongs in sql/functions/",
                    m.version,
                    m.name
                );
            }
        }
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
    }

    #[test]
    fn checksum_separates_parts() {
        assert_ne!(checksum(["ab", "c"]), checksum(["a", "bc"]));
        assert_eq!(checksum(["x"]), checksum(["x"]));
    }
}
