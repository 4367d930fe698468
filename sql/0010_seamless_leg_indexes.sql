-- 0010: fewer indexes on the seamless legs. Each leg moves through two or three states, and
-- every version of its row goes into every index. A bet's legs are found through
-- (bet_no, transaction_type), which also serves the handful of them ordered by seq (the seq
-- order is kept by the functions that add legs, under the bet's lock); one partial index of
-- the unfinished legs serves the retry job (by next_attempt_at), the stuck and payments/info
-- sweeps and the admin listings.
ALTER TABLE seamless_legs DROP CONSTRAINT seamless_legs_seq_unique;
DROP INDEX seamless_legs_due_idx;
DROP INDEX seamless_legs_open_idx;
CREATE INDEX seamless_legs_unfinished_idx ON seamless_legs (next_attempt_at)
    WHERE state NOT IN ('ok', 'refused');
