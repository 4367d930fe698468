//! The schema's two layers: checksummed numbered migrations, and the functions layer that is
//! re-created from `sql/functions/` whenever it changed.

use tokio_postgres::{Client, NoTls};

use crate::helpers::{dec, fresh_database, spawn_app};

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

const BET_BATCH_COPIES: &str = "SELECT count(*) FROM pg_proc WHERE proname = 'bet_batch'";

#[tokio::test]
async fn a_second_migrate_changes_nothing() {
    let url = fresh_database().await;
    let mut client = connect(&url).await;
    let applied = croupier::db::migrate::run(&mut client).await.unwrap();
    assert_eq!(applied.migrations, 0);
    assert!(!applied.functions, "unchanged functions are not re-created");
    assert_eq!(count(&client, BET_BATCH_COPIES).await, 1);
    let unstamped = "SELECT count(*) FROM schema_migrations WHERE checksum IS NULL";
    assert_eq!(count(&client, unstamped).await, 0);
}

#[tokio::test]
async fn an_edited_migration_is_refused_and_nothing_changes() {
    let url = fresh_database().await;
    let mut client = connect(&url).await;
    client
        .batch_execute(
            "UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 2;
             UPDATE schema_functions SET checksum = 'older'",
        )
        .await
        .unwrap();
    let e = croupier::db::migrate::run(&mut client).await.unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("migration 2 (ledger) was edited after it was applied"),
        "{message}"
    );
    // The refusal came before the functions layer: its recorded checksum is untouched.
    let older = "SELECT count(*) FROM schema_functions WHERE checksum = 'older'";
    assert_eq!(count(&client, older).await, 1);
}

#[tokio::test]
async fn a_database_from_before_checksums_gets_them_stamped() {
    let url = fresh_database().await;
    let mut client = connect(&url).await;
    client
        .batch_execute("UPDATE schema_migrations SET checksum = NULL")
        .await
        .unwrap();
    let applied = croupier::db::migrate::run(&mut client).await.unwrap();
    assert_eq!(applied.migrations, 0);
    let unstamped = "SELECT count(*) FROM schema_migrations WHERE checksum IS NULL";
    assert_eq!(count(&client, unstamped).await, 0);
}

#[tokio::test]
async fn changed_functions_are_dropped_and_created_again_from_the_files() {
    let url = fresh_database().await;
    let mut client = connect(&url).await;
    // A database whose functions are not the files': one function altered, one gone, one
    // left over from an older version, and the recorded checksum of that older version.
    client
        .batch_execute(
            "CREATE OR REPLACE FUNCTION parse_time(p text) RETURNS timestamptz
                 LANGUAGE sql STABLE AS $$ SELECT now() $$;
             DROP FUNCTION bet_one;
             CREATE FUNCTION left_over() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
             DROP TRIGGER journal_append_only ON journal;
             UPDATE schema_functions SET checksum = 'older'",
        )
        .await
        .unwrap();
    let applied = croupier::db::migrate::run(&mut client).await.unwrap();
    assert!(applied.functions);
    let left_over = "SELECT count(*) FROM pg_proc WHERE proname = 'left_over'";
    assert_eq!(count(&client, left_over).await, 0);
    let bet_one = "SELECT count(*) FROM pg_proc WHERE proname = 'bet_one'";
    assert_eq!(count(&client, bet_one).await, 1);
    let epoch: i64 = client
        .query_one(
            "SELECT (extract(epoch FROM parse_time('1719766120806')) * 1000)::bigint",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(epoch, 1_719_766_120_806);
    // The journal's append-only trigger is back.
    let e = client
        .batch_execute("DELETE FROM journal")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("append-only") || format!("{e:?}").contains("append-only"));
}

#[tokio::test]
async fn bet_batch_refuses_arrays_of_unequal_length_or_over_its_bound() {
    let url = fresh_database().await;
    let client = connect(&url).await;
    let e = client
        .query(
            "SELECT * FROM bet_batch(ARRAY['pay_in', 'pay_in'], ARRAY['p'], ARRAY[gen_random_uuid()],
                 ARRAY['b'], ARRAY[NULL::text], ARRAY[1::numeric], ARRAY[NULL::numeric],
                 ARRAY[gen_random_uuid()], ARRAY[NULL::uuid], ARRAY[false], ARRAY[NULL::uuid])",
            &[],
        )
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("differ in length"), "{e:?}");
    let e = client
        .query(
            "SELECT * FROM bet_batch(array_fill('pay_in'::text, ARRAY[1001]),
                 array_fill('p'::text, ARRAY[1001]), array_fill(gen_random_uuid(), ARRAY[1001]),
                 array_fill('b'::text, ARRAY[1001]), array_fill(NULL::text, ARRAY[1001]),
                 array_fill(1::numeric, ARRAY[1001]), array_fill(NULL::numeric, ARRAY[1001]),
                 array_fill(gen_random_uuid(), ARRAY[1001]), array_fill(NULL::uuid, ARRAY[1001]),
                 array_fill(false, ARRAY[1001]), array_fill(NULL::uuid, ARRAY[1001]))",
            &[],
        )
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("more than 1000"), "{e:?}");
}

#[tokio::test]
async fn ledger_post_refuses_a_leg_that_would_take_a_wallet_below_zero() {
    let app = spawn_app().await;
    let p = app.player("USD", "10").await;
    let client = app.pool.get().await.unwrap();
    for legs in [
        "gen_random_uuid(), 'withdrawal', -10.01",
        // A two-leg post whose first leg dips below zero, even though the sum would not.
        "gen_random_uuid(), 'withdrawal', -11, gen_random_uuid(), 'deposit', 5",
    ] {
        let e = client
            .query(
                &format!(
                    "SELECT ledger_post(w.id, w.player_id, NULL, NULL, NULL, {legs})
                       FROM wallets w JOIN players pl ON pl.id = w.player_id
                      WHERE pl.external_id = $1"
                ),
                &[&p.external_id],
            )
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("would go negative"), "{e:?}");
    }
    assert_eq!(app.wallet(&p).await, (dec("10"), 1));
    app.assert_books_balance().await;
}

#[tokio::test]
async fn an_older_build_refuses_a_newer_database() {
    let url = fresh_database().await;
    let mut client = connect(&url).await;
    client
        .batch_execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')",
        )
        .await
        .unwrap();
    let message = croupier::db::migrate::run(&mut client)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("migration 9999, newer than this build knows"),
        "{message}"
    );
}

#[tokio::test]
async fn a_trigger_of_another_schema_survives_a_functions_rebuild() {
    let url = fresh_database().await;
    let mut client = connect(&url).await;
    client
        .batch_execute(
            "CREATE SCHEMA audit;
             CREATE FUNCTION audit.note() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RETURN NULL; END $$;
             CREATE TRIGGER audit_players AFTER INSERT ON players
                 FOR EACH ROW EXECUTE FUNCTION audit.note();
             UPDATE schema_functions SET checksum = 'older'",
        )
        .await
        .unwrap();
    assert!(
        croupier::db::migrate::run(&mut client)
            .await
            .unwrap()
            .functions
    );
    let audit = "SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_players'";
    assert_eq!(count(&client, audit).await, 1);
    let ours = "SELECT count(*) FROM pg_trigger WHERE tgname = 'journal_append_only'";
    assert_eq!(count(&client, ours).await, 1);
}
