-- 0011: request ids accepted, shared by every croupier on the database and kept across
-- restarts (see src/auth/nonces.rs). A row is needed for two minutes at most: the timestamp
-- window refuses older requests. The servers delete old rows; BRIN on seen_at (rows arrive
-- in time order) keeps that delete cheap without a second B-tree written per request.
CREATE TABLE request_nonces (
    counterparty_id text        NOT NULL,
    request_id      uuid        NOT NULL,
    seen_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT request_nonces_pkey PRIMARY KEY (counterparty_id, request_id)
);
CREATE INDEX request_nonces_seen_brin ON request_nonces USING brin (seen_at);
