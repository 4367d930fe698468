-- 0009: the seamless hot tables lose their foreign keys, as the bet tables never had them
-- (0002): a checked reference costs a locking read of the parent row for every row written,
-- and every provider call on a seamless session writes a bet, its legs and their exchanges.
-- `admin reconcile` checks the same references instead (seamlessMismatches, subject
-- "orphan").
ALTER TABLE seamless_bets DROP CONSTRAINT seamless_bets_session_fkey;
ALTER TABLE seamless_legs DROP CONSTRAINT seamless_legs_bet_fkey;
ALTER TABLE seamless_exchanges DROP CONSTRAINT seamless_exchanges_leg_fkey;
