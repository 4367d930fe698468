-- 0004: crypto top-ups and payouts (inabit deposits and withdrawals, B2BINPAY payouts).
--
-- Every balance effect is a journal row posted by `ledger_post`, with `transfer_id` naming the
-- deposit or payout it belongs to:
--   crypto_deposit  (+) a detected or completed deposit credited to the wallet;
--   crypto_reversal (-) a failed or forked deposit taken back;
--   payout_hold     (-) the amount of a payout taken out of the wallet while it is in flight;
--   payout_release  (+) a payout that finally failed, given back.
-- A locked deposit also adds its amount to `wallets.locked` (counted in the balance, not
-- withdrawable); `reconcile` checks that every wallet's `locked` is the sum of its deposits'
-- `locked_amount`.

-- Which payout rail an operator's players use.
ALTER TABLE counterparties
    ADD COLUMN payout_rail text NOT NULL DEFAULT 'inabit',
    ADD CONSTRAINT counterparties_payout_rail_known CHECK (payout_rail IN ('inabit', 'b2binpay'));

-- Long-lived credentials of the integrations that must survive a restart: inabit's login
-- token (valid 30 days, refreshed by a job well before it expires). The last refresh failure
-- is kept for the status endpoint.
CREATE TABLE integration_tokens (
    name           text        NOT NULL,
    token          text        NOT NULL,
    expires_at     timestamptz,
    refreshed_at   timestamptz NOT NULL DEFAULT now(),
    last_error     text,
    last_error_at  timestamptz,
    CONSTRAINT integration_tokens_pkey PRIMARY KEY (name)
);

-- Conversion rates: one unit of `asset` is worth `rate` units of `currency`. A deposit and a
-- payout each copy the rate they used; changing a rate changes nothing already booked.
CREATE TABLE crypto_rates (
    asset       text        NOT NULL,
    currency    text        NOT NULL,
    rate        numeric     NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT crypto_rates_pkey PRIMARY KEY (asset, currency),
    CONSTRAINT crypto_rates_rate_positive CHECK (rate > 0)
);

-- inabit's customer for each player (our player id is the customer identifier).
CREATE TABLE crypto_customers (
    player_id      uuid        NOT NULL,
    customer_uuid  text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT crypto_customers_pkey PRIMARY KEY (player_id),
    CONSTRAINT crypto_customers_player_fkey FOREIGN KEY (player_id) REFERENCES players (id)
);

-- A player's deposit address for one asset on one blockchain, and the wallet its deposits
-- credit (with that wallet currency's scale, to round conversions in SQL).
CREATE TABLE crypto_addresses (
    id          uuid        NOT NULL,
    player_id   uuid        NOT NULL,
    wallet_id   uuid        NOT NULL,
    scale       integer     NOT NULL,
    asset       text        NOT NULL,
    blockchain  text        NOT NULL,
    address     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT crypto_addresses_pkey PRIMARY KEY (id),
    CONSTRAINT crypto_addresses_player_fkey FOREIGN KEY (player_id) REFERENCES players (id),
    CONSTRAINT crypto_addresses_wallet_fkey FOREIGN KEY (wallet_id) REFERENCES wallets (id),
    CONSTRAINT crypto_addresses_player_asset_unique UNIQUE (player_id, asset, blockchain),
    -- EVM chains give one address for every token: the address alone is not unique.
    CONSTRAINT crypto_addresses_address_unique UNIQUE (address, asset, blockchain)
);

-- Every webhook and callback exactly as received, before anything is done with it: the
-- durable record of what the provider told us, and the queue of events to confirm.
-- `dedupe_key` drops exact repeats of a signed callback.
CREATE TABLE crypto_events (
    id            uuid        NOT NULL,
    source        text        NOT NULL,
    event         text,
    reference     text,
    body          text        NOT NULL,
    dedupe_key    text,
    received_at   timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    attempts      integer     NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    outcome       text,
    CONSTRAINT crypto_events_pkey PRIMARY KEY (id),
    CONSTRAINT crypto_events_source_known CHECK (source IN ('inabit', 'b2binpay')),
    CONSTRAINT crypto_events_dedupe_unique UNIQUE (source, dedupe_key)
);
CREATE INDEX crypto_events_pending_idx ON crypto_events (received_at) WHERE processed_at IS NULL;

-- An incoming deposit, keyed by inabit's transaction id. States only move forward:
--   seen      known, nothing credited (an ignored status such as Initiated, or no match yet);
--   locked    detected on chain: credited and locked;
--   completed confirmed: credited and withdrawable;
--   reversed  failed or forked: nothing credited (any locked credit taken back);
--   review    waiting for a person (undercharge, overcharge, unmatched address, no rate,
--             a reversal of money already spent, a change of amount); `review_reason` says why.
-- `credited` is the net amount this deposit has put in the wallet (the sum of its journal
-- rows); `locked_amount` is its share of the wallet's `locked`.
CREATE TABLE crypto_deposits (
    id               uuid        NOT NULL,
    provider_tx_id   text        NOT NULL,
    player_id        uuid,
    wallet_id        uuid,
    asset            text        NOT NULL,
    blockchain       text        NOT NULL,
    address          text        NOT NULL,
    tx_hash          text,
    coin_amount      numeric     NOT NULL,
    currency         text,
    rate             numeric,
    amount           numeric,
    provider_status  text        NOT NULL,
    state            text        NOT NULL,
    review_reason    text,
    credited         numeric     NOT NULL DEFAULT 0,
    locked_amount    numeric     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT crypto_deposits_pkey PRIMARY KEY (id),
    CONSTRAINT crypto_deposits_provider_tx_unique UNIQUE (provider_tx_id),
    CONSTRAINT crypto_deposits_state_known
        CHECK (state IN ('seen', 'locked', 'completed', 'reversed', 'review')),
    CONSTRAINT crypto_deposits_amounts_nonnegative
        CHECK (coin_amount >= 0 AND credited >= 0 AND locked_amount >= 0)
);
CREATE INDEX crypto_deposits_player_idx ON crypto_deposits (player_id, created_at);

-- Each ledger effect of a deposit, applied once: the key is inabit's transaction id and the
-- state it moved the deposit to.
CREATE TABLE crypto_deposit_steps (
    provider_tx_id  text        NOT NULL,
    target          text        NOT NULL,
    provider_status text        NOT NULL,
    applied_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT crypto_deposit_steps_pkey PRIMARY KEY (provider_tx_id, target)
);

-- A payout to a player's crypto address, keyed by the operator's transaction id; `id` is our
-- payout id, sent to the provider (inabit `note`, B2BINPAY `tracking_id`). States:
--   refused   never held (insufficient withdrawable balance); recorded so a retry answers alike;
--   held      the amount is out of the wallet; the provider call may or may not have been made
--             (`attempts` counts the calls begun);
--   submitted the provider accepted it (`provider_ref` is its id);
--   paid      final success;
--   released  final failure, the amount given back;
--   review    the provider's answer needs a person (e.g. AML block); the hold stays.
CREATE TABLE crypto_payouts (
    id               uuid        NOT NULL,
    operator_id      text        NOT NULL,
    transaction_id   text        NOT NULL,
    player_id        uuid        NOT NULL,
    wallet_id        uuid        NOT NULL,
    currency         text        NOT NULL,
    amount           numeric     NOT NULL,
    asset            text        NOT NULL,
    blockchain       text        NOT NULL,
    address          text        NOT NULL,
    coin_amount      numeric     NOT NULL,
    rate             numeric     NOT NULL,
    rail             text        NOT NULL,
    state            text        NOT NULL,
    refusal          text,
    idempotency_key  uuid        NOT NULL,
    provider_ref     text,
    provider_status  text,
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT crypto_payouts_pkey PRIMARY KEY (id),
    CONSTRAINT crypto_payouts_operator_transaction_unique UNIQUE (operator_id, transaction_id),
    CONSTRAINT crypto_payouts_wallet_fkey FOREIGN KEY (wallet_id) REFERENCES wallets (id),
    CONSTRAINT crypto_payouts_state_known
        CHECK (state IN ('refused', 'held', 'submitted', 'paid', 'released', 'review')),
    CONSTRAINT crypto_payouts_rail_known CHECK (rail IN ('inabit', 'b2binpay')),
    CONSTRAINT crypto_payouts_refusal_iff_refused CHECK ((state = 'refused') = (refusal IS NOT NULL)),
    CONSTRAINT crypto_payouts_amounts_positive CHECK (amount > 0 AND coin_amount > 0 AND rate > 0)
);
CREATE INDEX crypto_payouts_open_idx ON crypto_payouts (updated_at)
    WHERE state IN ('held', 'submitted');
CREATE UNIQUE INDEX crypto_payouts_provider_ref_unique ON crypto_payouts (rail, provider_ref);

-- The review queue: deposits and payouts a person must look at.
CREATE TABLE crypto_reviews (
    id          uuid        NOT NULL,
    subject     text        NOT NULL,
    subject_id  uuid        NOT NULL,
    player_id   uuid,
    reason      text        NOT NULL,
    detail      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    CONSTRAINT crypto_reviews_pkey PRIMARY KEY (id),
    -- subject: a deposit, a payout, or an event that could never be confirmed
    CONSTRAINT crypto_reviews_subject_known CHECK (subject IN ('deposit', 'payout', 'event'))
);
-- One open entry per thing and reason.
CREATE UNIQUE INDEX crypto_reviews_open_unique ON crypto_reviews (subject_id, reason)
    WHERE resolved_at IS NULL;

-- Durable positions of the polling jobs (e.g. the last deposit update time seen).
CREATE TABLE crypto_checkpoints (
    name        text        NOT NULL,
    value       text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT crypto_checkpoints_pkey PRIMARY KEY (name)
);

-- The crypto functions are in sql/functions/: crypto_reviews.sql, crypto_deposits.sql,
-- crypto_payouts.sql.
