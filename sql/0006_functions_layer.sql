-- 0006: from here on every function, trigger function, trigger and composite type lives once,
-- in sql/functions/, and is re-created after the numbered migrations whenever that folder
-- changes (see src/db/migrate.rs). This drops the copies the earlier migrations made, and the
-- load-test helper `load_session_id`, which never belonged in the production schema.

DROP TRIGGER IF EXISTS journal_append_only ON journal;
DROP TRIGGER IF EXISTS counterparties_cache ON counterparties;
DROP TRIGGER IF EXISTS sessions_cache ON sessions;

DROP FUNCTION IF EXISTS journal_refuse_change;
DROP FUNCTION IF EXISTS notify_cache_change;
DROP FUNCTION IF EXISTS ledger_post;
DROP FUNCTION IF EXISTS bet_fingerprint;
DROP FUNCTION IF EXISTS bet_place_step;
DROP FUNCTION IF EXISTS bet_payout_step;
DROP FUNCTION IF EXISTS bet_refund_step;
DROP FUNCTION IF EXISTS bet_batch;
DROP FUNCTION IF EXISTS bet_one;
DROP FUNCTION IF EXISTS pay_in;
DROP FUNCTION IF EXISTS pay_in_out;
DROP FUNCTION IF EXISTS pay_out;
DROP FUNCTION IF EXISTS refund;
DROP FUNCTION IF EXISTS session_balance;
DROP FUNCTION IF EXISTS transfer;
DROP FUNCTION IF EXISTS parse_time;
DROP FUNCTION IF EXISTS load_session_id;
DROP FUNCTION IF EXISTS crypto_review;
DROP FUNCTION IF EXISTS crypto_deposit_apply;
DROP FUNCTION IF EXISTS crypto_deposit_reopen;
DROP FUNCTION IF EXISTS crypto_deposit_settle;
DROP FUNCTION IF EXISTS crypto_payout_hold;
DROP FUNCTION IF EXISTS crypto_payout_finish;
DROP FUNCTION IF EXISTS crypto_payout_settle;

DROP TYPE IF EXISTS bet_step;
DROP TYPE IF EXISTS bet_outcome;
