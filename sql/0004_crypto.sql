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

CREATE FUNCTION crypto_review(p_subject text, p_id uuid, p_player uuid, p_reason text,
                              p_detail text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO crypto_reviews (id, subject, subject_id, player_id, reason, detail)
    VALUES (gen_random_uuid(), p_subject, p_id, p_player, p_reason, p_detail)
    ON CONFLICT (subject_id, reason) WHERE resolved_at IS NULL DO NOTHING
$$;

-- Applies what inabit's API says of a deposit (never what a webhook says: the caller has read
-- it from the API). Idempotent by (transaction id, target state); states only move forward,
-- so a late or repeated event changes nothing. Lock order: the wallet, then the deposit row.
--
-- Status mapping: Pending, Unconfirmed, Confirming -> locked credit; Completed -> unlock (or
-- an unlocked credit if nothing was seen before); Failed, PendingFork -> reversal;
-- Undercharge, UnderchargeExpired, Overcharge -> review; anything else -> recorded only.
--
-- Returns the outcome (applied | duplicate | ignored | review | stale), the deposit and its
-- state.
CREATE FUNCTION crypto_deposit_apply(p_tx text, p_status text, p_coin_amount numeric,
                                     p_asset text, p_blockchain text, p_address text,
                                     p_tx_hash text, p_deposit uuid, p_journal uuid)
RETURNS TABLE (outcome text, deposit_id uuid, state text)
LANGUAGE plpgsql AS $$
DECLARE
    a        crypto_addresses%ROWTYPE;
    d        crypto_deposits%ROWTYPE;
    w        record;
    v_target text := CASE
        WHEN p_status IN ('Pending', 'Unconfirmed', 'Confirming') THEN 'locked'
        WHEN p_status = 'Completed' THEN 'completed'
        WHEN p_status IN ('Failed', 'PendingFork') THEN 'reversed'
        WHEN p_status IN ('Undercharge', 'UnderchargeExpired', 'Overcharge') THEN 'review'
        END;
    v_rate   numeric;
    v_amount numeric;
    v_reason text;
    v_currency text;
    -- Review reasons are the status in snake case: UnderchargeExpired -> undercharge_expired.
    v_status_reason text := lower(regexp_replace(p_status, '([a-z])([A-Z])', '\1_\2', 'g'));
BEGIN
    SELECT * INTO a FROM crypto_addresses ca
     WHERE ca.address = p_address AND ca.asset = p_asset AND ca.blockchain = p_blockchain;
    IF FOUND THEN
        SELECT wl.id, wl.player_id, wl.currency, wl.balance, wl.locked INTO w
          FROM wallets wl WHERE wl.id = a.wallet_id FOR UPDATE;
        v_currency := w.currency;
    END IF;

    INSERT INTO crypto_deposits (id, provider_tx_id, player_id, wallet_id, asset, blockchain,
                                 address, tx_hash, coin_amount, currency, provider_status, state)
    VALUES (p_deposit, p_tx, a.player_id, a.wallet_id, p_asset, p_blockchain, p_address,
            p_tx_hash, p_coin_amount, v_currency, p_status, 'seen')
    ON CONFLICT ON CONSTRAINT crypto_deposits_provider_tx_unique DO NOTHING;
    SELECT * INTO d FROM crypto_deposits cd WHERE cd.provider_tx_id = p_tx FOR UPDATE;
    -- Until something is credited, the amount is whatever inabit says now and the wallet is
    -- the address's (a reopened deposit may have had none).
    UPDATE crypto_deposits cd SET provider_status = p_status,
           tx_hash = coalesce(p_tx_hash, cd.tx_hash), updated_at = now(),
           coin_amount = CASE WHEN cd.state = 'seen' THEN p_coin_amount ELSE cd.coin_amount END,
           player_id = CASE WHEN cd.state = 'seen' THEN a.player_id ELSE cd.player_id END,
           wallet_id = CASE WHEN cd.state = 'seen' THEN a.wallet_id ELSE cd.wallet_id END,
           currency = CASE WHEN cd.state = 'seen' THEN v_currency ELSE cd.currency END
     WHERE cd.id = d.id
    RETURNING * INTO d;

    IF v_target IS NULL THEN
        RETURN QUERY SELECT 'ignored'::text, d.id, d.state;
        RETURN;
    END IF;
    IF d.state IN ('completed', 'reversed', 'review') OR (d.state = 'locked' AND v_target = 'locked') THEN
        IF d.state = 'reversed' AND v_target = 'completed' THEN
            PERFORM crypto_review('deposit', d.id, d.player_id, 'completed_after_reversal',
                                  p_status);
        END IF;
        RETURN QUERY SELECT CASE WHEN d.state = v_target THEN 'duplicate' ELSE 'stale' END,
                            d.id, d.state;
        RETURN;
    END IF;
    -- A credited deposit is bound to its address and wallet: a report naming another
    -- destination (or one we cannot match now) moves no money.
    IF d.state = 'locked' AND (a.id IS NULL OR a.wallet_id <> d.wallet_id
                               OR d.address <> p_address OR d.asset <> p_asset
                               OR d.blockchain <> p_blockchain) THEN
        UPDATE crypto_deposits cd SET state = 'review', review_reason = 'report_changed'
         WHERE cd.id = d.id;
        PERFORM crypto_review('deposit', d.id, d.player_id, 'report_changed', p_address);
        RETURN QUERY SELECT 'review'::text, d.id, 'review'::text;
        RETURN;
    END IF;
    INSERT INTO crypto_deposit_steps (provider_tx_id, target, provider_status)
    VALUES (p_tx, v_target, p_status)
    ON CONFLICT ON CONSTRAINT crypto_deposit_steps_pkey DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, d.id, d.state;
        RETURN;
    END IF;

    -- Nothing credited yet: decide what the deposit is worth, or why a person must decide.
    IF d.state = 'seen' AND v_target IN ('locked', 'completed') THEN
        IF a.id IS NULL THEN
            v_reason := 'unmatched_address';
        ELSIF p_coin_amount <= 0 THEN
            v_reason := 'bad_amount';
        ELSE
            IF p_asset = v_currency THEN
                v_rate := 1;
            ELSE
                SELECT r.rate INTO v_rate FROM crypto_rates r
                 WHERE r.asset = p_asset AND r.currency = v_currency;
            END IF;
            IF v_rate IS NULL THEN
                v_reason := 'no_rate';
            ELSE
                -- Credit what arrived, rounded down to the wallet currency's scale.
                v_amount := trunc(p_coin_amount * v_rate, a.scale);
                IF v_amount <= 0 THEN
                    v_reason := 'amount_too_small';
                END IF;
            END IF;
        END IF;
        IF v_reason IS NOT NULL THEN
            UPDATE crypto_deposits cd SET state = 'review', review_reason = v_reason,
                   rate = v_rate WHERE cd.id = d.id;
            PERFORM crypto_review('deposit', d.id, d.player_id, v_reason, p_status);
            RETURN QUERY SELECT 'review'::text, d.id, 'review'::text;
            RETURN;
        END IF;
        PERFORM ledger_post(w.id, w.player_id, NULL, NULL, d.id, p_journal, 'crypto_deposit',
                            v_amount);
        IF v_target = 'locked' THEN
            UPDATE wallets SET locked = locked + v_amount WHERE id = w.id;
        END IF;
        UPDATE crypto_deposits cd SET state = v_target, rate = v_rate, amount = v_amount,
               credited = v_amount,
               locked_amount = CASE WHEN v_target = 'locked' THEN v_amount ELSE 0 END
         WHERE cd.id = d.id;
        RETURN QUERY SELECT 'applied'::text, d.id, v_target;
        RETURN;
    END IF;

    IF d.state = 'seen' THEN
        -- Failed or under/overcharged before anything was credited.
        IF v_target = 'review' THEN
            UPDATE crypto_deposits cd SET state = 'review', review_reason = v_status_reason
             WHERE cd.id = d.id;
            PERFORM crypto_review('deposit', d.id, d.player_id, v_status_reason, NULL);
        ELSE
            UPDATE crypto_deposits cd SET state = 'reversed' WHERE cd.id = d.id;
        END IF;
        RETURN QUERY SELECT 'applied'::text, d.id, v_target;
        RETURN;
    END IF;

    -- d.state = 'locked': the credit is in the wallet, locked.
    IF v_target = 'completed' AND d.coin_amount = p_coin_amount THEN
        UPDATE wallets SET locked = locked - d.locked_amount WHERE id = w.id;
        UPDATE crypto_deposits cd SET state = 'completed', locked_amount = 0 WHERE cd.id = d.id;
        RETURN QUERY SELECT 'applied'::text, d.id, 'completed'::text;
    ELSIF v_target = 'reversed' AND w.balance >= d.credited THEN
        -- The coins never arrived: the credit is taken back whenever the wallet holds it.
        PERFORM ledger_post(w.id, w.player_id, NULL, NULL, d.id, p_journal, 'crypto_reversal',
                            -d.credited);
        UPDATE wallets SET locked = locked - d.locked_amount WHERE id = w.id;
        UPDATE crypto_deposits cd SET state = 'reversed', credited = 0, locked_amount = 0
         WHERE cd.id = d.id;
        RETURN QUERY SELECT 'applied'::text, d.id, 'reversed'::text;
    ELSE
        -- Spent in play before it failed, a changed amount, or an under/overcharge after
        -- detection:
        -- the credit stays locked (so what is left cannot be withdrawn) and a person decides
        -- (`crypto_deposit_settle`).
        v_reason := CASE WHEN v_target = 'reversed' THEN 'reversal_spent'
                         WHEN v_target = 'completed' THEN 'amount_changed'
                         ELSE v_status_reason END;
        UPDATE crypto_deposits cd SET state = 'review', review_reason = v_reason
         WHERE cd.id = d.id;
        PERFORM crypto_review('deposit', d.id, d.player_id, v_reason, p_status);
        RETURN QUERY SELECT 'review'::text, d.id, 'review'::text;
    END IF;
END
$$;

-- Opens a payout: idempotent by (operator, transaction id). Under the wallet lock, takes the
-- amount out of the withdrawable balance into a hold (a payout_hold journal row), converting
-- it to the coin at the stored rate, rounded down to the asset's decimals. A refusal
-- (insufficient withdrawable balance) is recorded and answered again on a retry.
--
-- Returns the status (ok | duplicate | conflict | player_not_found | no_rate |
-- insufficient_funds | amount_too_small) and the payout id.
CREATE FUNCTION crypto_payout_hold(p_operator text, p_external_id text, p_currency text,
                                   p_amount numeric, p_transaction_id text, p_asset text,
                                   p_blockchain text, p_address text, p_asset_scale integer,
                                   p_rail text, p_payout uuid, p_journal uuid, p_key uuid)
RETURNS TABLE (status text, payout_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
    w       record;
    p       crypto_payouts%ROWTYPE;
    v_rate  numeric;
    v_coin  numeric;
BEGIN
    SELECT wl.id, wl.player_id, wl.balance, wl.locked INTO w
      FROM players pl JOIN wallets wl ON wl.player_id = pl.id AND wl.currency = p_currency
     WHERE pl.operator_id = p_operator AND pl.external_id = p_external_id
       FOR UPDATE OF wl;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'player_not_found'::text, NULL::uuid;
        RETURN;
    END IF;

    SELECT * INTO p FROM crypto_payouts cp
     WHERE cp.operator_id = p_operator AND cp.transaction_id = p_transaction_id;
    IF FOUND THEN
        RETURN QUERY SELECT CASE WHEN p.wallet_id = w.id AND p.amount = p_amount
                                      AND p.asset = p_asset AND p.blockchain = p_blockchain
                                      AND p.address = p_address
                                 THEN 'duplicate' ELSE 'conflict' END, p.id;
        RETURN;
    END IF;

    IF p_asset = p_currency THEN
        v_rate := 1;
    ELSE
        SELECT r.rate INTO v_rate FROM crypto_rates r
         WHERE r.asset = p_asset AND r.currency = p_currency;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'no_rate'::text, NULL::uuid;
            RETURN;
        END IF;
    END IF;
    v_coin := trunc(p_amount / v_rate, p_asset_scale);
    IF v_coin <= 0 THEN
        RETURN QUERY SELECT 'amount_too_small'::text, NULL::uuid;
        RETURN;
    END IF;

    INSERT INTO crypto_payouts (id, operator_id, transaction_id, player_id, wallet_id, currency,
                                amount, asset, blockchain, address, coin_amount, rate, rail,
                                state, refusal, idempotency_key)
    VALUES (p_payout, p_operator, p_transaction_id, w.player_id, w.id, p_currency, p_amount,
            p_asset, p_blockchain, p_address, v_coin, v_rate, p_rail,
            CASE WHEN greatest(w.balance - w.locked, 0) >= p_amount THEN 'held' ELSE 'refused' END,
            CASE WHEN greatest(w.balance - w.locked, 0) >= p_amount THEN NULL
                 ELSE 'insufficient_funds' END,
            p_key)
    ON CONFLICT ON CONSTRAINT crypto_payouts_operator_transaction_unique DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'conflict'::text, NULL::uuid;
        RETURN;
    END IF;
    IF greatest(w.balance - w.locked, 0) < p_amount THEN
        RETURN QUERY SELECT 'insufficient_funds'::text, p_payout;
        RETURN;
    END IF;
    PERFORM ledger_post(w.id, w.player_id, NULL, NULL, p_payout, p_journal, 'payout_hold',
                        -p_amount);
    RETURN QUERY SELECT 'ok'::text, p_payout;
END
$$;

-- Ends a payout: 'paid' keeps the hold (the coins left), 'released' gives the amount back,
-- 'review' leaves the hold and queues it for a person. A payout already paid or released
-- stays as it is. Returns the outcome (applied | duplicate | final | not_applied |
-- not_found).
CREATE FUNCTION crypto_payout_finish(p_payout uuid, p_outcome text, p_provider_status text,
                                     p_journal uuid, p_only_unsent boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p  crypto_payouts%ROWTYPE;
BEGIN
    PERFORM 1 FROM wallets wl JOIN crypto_payouts cp ON cp.wallet_id = wl.id
     WHERE cp.id = p_payout FOR UPDATE OF wl;
    SELECT * INTO p FROM crypto_payouts cp WHERE cp.id = p_payout FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF p.state IN ('paid', 'released', 'refused') OR p.state = p_outcome THEN
        IF p.state = 'released' AND p_outcome <> 'released' THEN
            -- Given back, yet the provider says the coins left (or may have): the player may
            -- have it twice.
            PERFORM crypto_review('payout', p.id, p.player_id,
                                  CASE WHEN p_outcome = 'paid' THEN 'paid_after_release'
                                       ELSE 'review_after_release' END,
                                  p_provider_status);
        END IF;
        RETURN CASE WHEN p.state = p_outcome THEN 'duplicate' ELSE 'final' END;
    END IF;
    -- A provider's refusal of a call ends only a payout that no withdrawal is tied to yet
    -- (the Remote Approver may have tied one meanwhile).
    IF p_only_unsent AND (p.state <> 'held' OR p.provider_ref IS NOT NULL) THEN
        RETURN 'not_applied';
    END IF;
    IF p_outcome = 'released' THEN
        PERFORM ledger_post(p.wallet_id, p.player_id, NULL, NULL, p.id, p_journal,
                            'payout_release', p.amount);
    ELSIF p_outcome = 'review' THEN
        PERFORM crypto_review('payout', p.id, p.player_id, 'provider_status',
                              p_provider_status);
    END IF;
    UPDATE crypto_payouts cp SET state = p_outcome,
           provider_status = coalesce(p_provider_status, cp.provider_status),
           updated_at = now(),
           finished_at = CASE WHEN p_outcome IN ('paid', 'released') THEN now() END
     WHERE cp.id = p.id;
    RETURN 'applied';
END
$$;

-- Puts a deposit waiting in review that has credited nothing (no rate, an unmatched address,
-- an under/overcharge) back to 'seen' and closes its review entries, so that the next
-- confirmation from inabit's API applies it afresh: after a rate has been set, or an address
-- put right. Returns reopened | not_found | not_reopenable.
CREATE FUNCTION crypto_deposit_reopen(p_tx text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d  crypto_deposits%ROWTYPE;
BEGIN
    SELECT * INTO d FROM crypto_deposits cd WHERE cd.provider_tx_id = p_tx FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF d.state <> 'review' OR d.credited <> 0 OR d.locked_amount <> 0 THEN
        RETURN 'not_reopenable';
    END IF;
    DELETE FROM crypto_deposit_steps WHERE provider_tx_id = p_tx;
    UPDATE crypto_deposits SET state = 'seen', review_reason = NULL, updated_at = now()
     WHERE id = d.id;
    UPDATE crypto_reviews SET resolved_at = now()
     WHERE subject_id = d.id AND resolved_at IS NULL;
    RETURN 'reopened';
END
$$;

-- A person's decision on a credited deposit waiting in review: 'completed' unlocks it
-- (withdrawable from now on); 'reversed' takes the credit back if the wallet holds it.
-- Returns applied | not_found | not_settleable | insufficient_funds.
CREATE FUNCTION crypto_deposit_settle(p_tx text, p_outcome text, p_journal uuid)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d  crypto_deposits%ROWTYPE;
    w  record;
BEGIN
    SELECT * INTO d FROM crypto_deposits cd WHERE cd.provider_tx_id = p_tx;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF d.wallet_id IS NULL OR p_outcome NOT IN ('completed', 'reversed') THEN
        RETURN 'not_settleable';
    END IF;
    SELECT wl.id, wl.player_id, wl.balance INTO w FROM wallets wl WHERE wl.id = d.wallet_id
       FOR UPDATE;
    SELECT * INTO d FROM crypto_deposits cd WHERE cd.id = d.id FOR UPDATE;
    IF d.state <> 'review' OR d.credited = 0 THEN
        RETURN 'not_settleable';
    END IF;
    IF p_outcome = 'reversed' THEN
        IF w.balance < d.credited THEN
            RETURN 'insufficient_funds';
        END IF;
        PERFORM ledger_post(w.id, w.player_id, NULL, NULL, d.id, p_journal, 'crypto_reversal',
                            -d.credited);
    END IF;
    UPDATE wallets SET locked = locked - d.locked_amount WHERE id = w.id;
    UPDATE crypto_deposits cd SET state = p_outcome, locked_amount = 0, updated_at = now(),
           credited = CASE WHEN p_outcome = 'reversed' THEN 0 ELSE cd.credited END
     WHERE cd.id = d.id;
    UPDATE crypto_reviews SET resolved_at = now()
     WHERE subject_id = d.id AND resolved_at IS NULL;
    RETURN 'applied';
END
$$;

-- A person's decision on a payout waiting in review (after checking with the provider):
-- 'paid' or 'released'. Under the payout's lock, closes the review entries open now and ends
-- the payout; an entry a provider opens afterwards stays open. Returns applied | not_found |
-- not_in_review.
CREATE FUNCTION crypto_payout_settle(p_payout uuid, p_outcome text, p_journal uuid)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p  crypto_payouts%ROWTYPE;
BEGIN
    PERFORM 1 FROM wallets wl JOIN crypto_payouts cp ON cp.wallet_id = wl.id
     WHERE cp.id = p_payout FOR UPDATE OF wl;
    SELECT * INTO p FROM crypto_payouts cp WHERE cp.id = p_payout FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF p.state <> 'review' OR p_outcome NOT IN ('paid', 'released') THEN
        RETURN 'not_in_review';
    END IF;
    UPDATE crypto_reviews SET resolved_at = now()
     WHERE subject_id = p.id AND resolved_at IS NULL;
    RETURN crypto_payout_finish(p.id, p_outcome, 'settled by hand', p_journal, false);
END
$$;
