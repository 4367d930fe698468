//! Every statement the crypto module runs itself (the money movements are the crypto
//! ledger's, `ledger::crypto`). Tables: `sql/0004_crypto.sql`. None of them is ever held
//! open across a provider call: each runs on its own (autocommit) on the crypto pool.

// --- deposit addresses -------------------------------------------------------------------

/// The player's wallet(s) of the operator, optionally of one currency.
pub const PLAYER_WALLETS: &str = "SELECT pl.id, wl.id, wl.currency
       FROM players pl JOIN wallets wl ON wl.player_id = pl.id
      WHERE pl.operator_id = $1 AND pl.external_id = $2
        AND ($3::text IS NULL OR wl.currency = $3)
      ORDER BY wl.currency";

/// The player's stored address for an asset and blockchain, and its wallet's currency.
pub const KNOWN_ADDRESS: &str = "SELECT a.address, w.currency FROM crypto_addresses a
       JOIN wallets w ON w.id = a.wallet_id
      WHERE a.player_id = $1 AND a.asset = $2 AND a.blockchain = $3";

/// Claims the creation of the player's inabit customer (`claimed_at`, no customer yet: a
/// server is asking inabit for it now). Returns the claim's time when the claim is ours: new,
/// or taken over from a claim older than `$2` milliseconds (its server died).
pub const CLAIM_CUSTOMER: &str = "INSERT INTO crypto_customers (player_id, claimed_at)
     VALUES ($1, clock_timestamp())
     ON CONFLICT (player_id) DO UPDATE SET claimed_at = clock_timestamp()
      WHERE crypto_customers.customer_uuid IS NULL
        AND crypto_customers.claimed_at <= now() - $2::bigint * interval '1 millisecond'
  RETURNING claimed_at";

/// The stored customer; NULL while a claim is open.
pub const STORED_CUSTOMER: &str = "SELECT customer_uuid FROM crypto_customers WHERE player_id = $1";

/// Records the customer inabit created under our claim (`$3`, its time), if it is still ours.
pub const KEEP_CUSTOMER: &str = "UPDATE crypto_customers
        SET customer_uuid = $2, claimed_at = NULL, created_at = now()
      WHERE player_id = $1 AND customer_uuid IS NULL AND claimed_at = $3";

/// Gives our claim (`$2`, its time) up after inabit did not create the customer.
pub const DROP_CUSTOMER_CLAIM: &str = "DELETE FROM crypto_customers
      WHERE player_id = $1 AND customer_uuid IS NULL AND claimed_at = $2";

/// Stores an address unless the player has one for the asset already (the first stays).
pub const INSERT_ADDRESS: &str = "INSERT INTO crypto_addresses (id, player_id, wallet_id, scale,
                                   asset, blockchain, address)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT ON CONSTRAINT crypto_addresses_player_asset_unique DO NOTHING";

// --- inabit events -----------------------------------------------------------------------

/// Events waiting, counted up to $1 (the bound: counting further would only cost).
pub const PENDING_EVENTS: &str = "SELECT count(*) FROM (
         SELECT 1 FROM crypto_events WHERE processed_at IS NULL LIMIT $1) waiting";

pub const INSERT_WEBHOOK: &str = "INSERT INTO crypto_events (id, source, event, reference, body)
     VALUES ($1, 'inabit', $2, $3, $4)";

/// Pending inabit events due for a try, grouped by the transaction they name: at most 100
/// transactions from the 1000 oldest events.
pub const DUE_EVENTS: &str = "SELECT reference, array_agg(id) FROM (
         SELECT id, reference, received_at FROM crypto_events
          WHERE source = 'inabit' AND processed_at IS NULL
            -- after a failure, wait longer each time (5 s, 20 s, 45 s, …
            -- after the last try; the 20 tries span about 3.5 hours)
            AND coalesce(last_attempt_at, received_at)
                + attempts * attempts * interval '5 seconds' <= now()
          ORDER BY received_at LIMIT 1000) pending
      GROUP BY reference ORDER BY min(received_at) LIMIT 100";

pub const EVENTS_DONE: &str = "UPDATE crypto_events SET processed_at = now(), outcome = $2,
            attempts = attempts + 1, last_attempt_at = now()
      WHERE id = ANY($1)";

/// A failed try of events; after the 20th they are done and go to the review queue, once
/// per transaction however many events named it. `$3` is the review reason.
pub const EVENTS_FAILED: &str = "WITH tried AS (
         UPDATE crypto_events SET attempts = attempts + 1,
                last_attempt_at = now(), outcome = left($2, 300),
                processed_at = CASE WHEN attempts + 1 >= 20 THEN now() END
          WHERE id = ANY($1)
      RETURNING id, reference, processed_at)
     SELECT crypto_review('event', md5('event:' || coalesce(reference, id::text))::uuid,
                          NULL, $3, reference)
       FROM tried WHERE processed_at IS NOT NULL";

// --- deposit polling ---------------------------------------------------------------------

pub const POLL_CHECKPOINT: &str =
    "SELECT value FROM crypto_checkpoints WHERE name = 'inabit_deposits'";

pub const MOVE_POLL_CHECKPOINT: &str = "INSERT INTO crypto_checkpoints (name, value)
     VALUES ('inabit_deposits', $1)
     ON CONFLICT (name) DO UPDATE SET value = $1, updated_at = now()";

/// A polled deposit that could not be applied, as an event for the worker (once per
/// dedupe key).
pub const INSERT_POLL_FAILURE: &str = "INSERT INTO crypto_events (id, source, event, reference,
                                                    body, dedupe_key)
     VALUES ($1, 'inabit', 'PollFailed', $2, '{}', $3)
     ON CONFLICT ON CONSTRAINT crypto_events_dedupe_unique DO NOTHING";

// --- payouts -----------------------------------------------------------------------------

pub const OPERATOR_TREASURY: &str =
    "SELECT payout_rail, payout_wallet FROM counterparties WHERE id = $1";

// --- B2BINPAY callbacks ------------------------------------------------------------------

pub const INSERT_CALLBACK: &str = "INSERT INTO crypto_events (id, source, event, reference, body,
                                               dedupe_key)
     VALUES ($1, 'b2binpay', 'payout', $2, $3, $4)
     ON CONFLICT ON CONSTRAINT crypto_events_dedupe_unique DO NOTHING";

pub const CALLBACK_BY_KEY: &str = "SELECT id, processed_at IS NOT NULL FROM crypto_events
      WHERE source = 'b2binpay' AND dedupe_key = $1";

pub const CALLBACK_DONE: &str = "UPDATE crypto_events SET processed_at = now(), outcome = $2,
            attempts = attempts + 1
      WHERE id = $1";

/// Claims the recorded callbacks not applied yet that are due for a try, with the same
/// growing delay as inabit events.
pub const DUE_CALLBACKS: &str = "UPDATE crypto_events SET attempts = attempts + 1,
            last_attempt_at = now()
      WHERE id IN (SELECT id FROM crypto_events
                    WHERE source = 'b2binpay' AND processed_at IS NULL
                      AND coalesce(last_attempt_at, received_at + interval '1 minute')
                          + attempts * attempts * interval '5 seconds' <= now()
                    ORDER BY received_at LIMIT 100
                      FOR UPDATE SKIP LOCKED)
  RETURNING id, body, attempts";

/// A callback given up on: done, and in the review queue. `$3` is the review reason.
pub const CALLBACK_GIVEN_UP: &str = "WITH given_up AS (
         UPDATE crypto_events SET processed_at = now(), outcome = left($2, 300)
          WHERE id = $1 AND processed_at IS NULL RETURNING id)
     SELECT crypto_review('event', id, NULL, $3, NULL) FROM given_up";

// --- inabit login token ------------------------------------------------------------------

pub const SEED_LOGIN_TOKEN: &str = "INSERT INTO integration_tokens (name, token, expires_at)
     VALUES ($1, $2, now() + interval '30 days')
     ON CONFLICT (name) DO NOTHING";

pub const LOGIN_TOKEN: &str = "SELECT token FROM integration_tokens WHERE name = $1";

pub const REPLACE_LOGIN_TOKEN: &str = "UPDATE integration_tokens SET token = $2,
            refreshed_at = now(), expires_at = now() + interval '30 days', last_error = NULL,
            last_error_at = NULL
      WHERE name = $1";

pub const LOGIN_REFRESH_DUE: &str =
    "SELECT refreshed_at <= now() - $2::bigint * interval '1 second'
       FROM integration_tokens WHERE name = $1";

pub const LOGIN_REFRESH_FAILED: &str = "UPDATE integration_tokens SET last_error = left($2, 500),
            last_error_at = now()
      WHERE name = $1";

// --- status ------------------------------------------------------------------------------

pub const LOGIN_TOKEN_STATUS: &str = "SELECT (extract(epoch FROM refreshed_at) * 1000)::bigint,
            (extract(epoch FROM expires_at) * 1000)::bigint, last_error,
            (extract(epoch FROM last_error_at) * 1000)::bigint
       FROM integration_tokens WHERE name = 'inabit_login'";

pub const QUEUE_COUNTS: &str = "SELECT
        (SELECT count(*) FROM crypto_events WHERE processed_at IS NULL),
        (SELECT count(*) FROM crypto_payouts WHERE state IN ('held', 'submitted')),
        (SELECT count(*) FROM crypto_reviews WHERE resolved_at IS NULL),
        (SELECT value FROM crypto_checkpoints WHERE name = 'inabit_deposits')";
