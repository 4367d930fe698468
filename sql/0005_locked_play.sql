-- 0005: the operator setting "locked funds may be bet".
--
-- A locked crypto deposit (detected, not yet confirmed) counts in the balance. Whether it may
-- be staked is the operator's choice: `locked_play` true (the default) lets bets use the whole
-- balance; false lets them use only the unlocked part. Wins and refunds are never limited.
-- bet_batch and bet_one (sql/functions/bets.sql) read it with the operator row each already
-- reads.

ALTER TABLE counterparties ADD COLUMN locked_play boolean NOT NULL DEFAULT true;
