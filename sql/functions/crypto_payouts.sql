-- Crypto payouts (inabit and B2BINPAY): the hold taken before any provider call, the end of a
-- payout, and a person's decision on a payout waiting in review. Journal kinds: payout_hold
-- (-), payout_release (+).

-- What of a wallet's value may leave in crypto: what came in as confirmed crypto deposits,
-- less what payouts hold or paid. The caller holds the wallet's lock.
CREATE FUNCTION crypto_funded(p_wallet uuid) RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT sum(d.credited) FROM crypto_deposits d
                      WHERE d.wallet_id = p_wallet AND d.state = 'completed'), 0)
         - coalesce((SELECT sum(p.amount) FROM crypto_payouts p
                      WHERE p.wallet_id = p_wallet
                        AND p.state IN ('held', 'submitted', 'paid', 'review')), 0)
$$;

-- Opens a payout: idempotent by (operator, transaction id). Under the wallet lock, takes the
-- amount out of the withdrawable balance into a hold (a payout_hold journal row), converting
-- it to the coin at the stored rate, rounded down to the asset's decimals; the payout is sent
-- from the operator's wallet `p_source_wallet`. Unless the operator allows fiat-funded crypto
-- payouts, the amount must also be crypto-funded (`crypto_funded`). A refusal (insufficient
-- withdrawable or crypto-funded balance) is recorded and answered again on a retry.
--
-- Returns the status (ok | duplicate | conflict | player_not_found | no_rate |
-- insufficient_funds | not_crypto_funded | amount_too_small) and the payout id.
CREATE FUNCTION crypto_payout_hold(p_operator text, p_external_id text, p_currency text,
                                   p_amount numeric, p_transaction_id text, p_asset text,
                                   p_blockchain text, p_address text, p_asset_scale integer,
                                   p_rail text, p_source_wallet text, p_payout uuid,
                                   p_journal uuid, p_key uuid)
RETURNS TABLE (status text, payout_id uuid)
LANGUAGE plpgsql AS $$
DECLARE
    w       record;
    p       crypto_payouts%ROWTYPE;
    v_rate  numeric;
    v_coin  numeric;
    v_refusal text;
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

    IF greatest(w.balance - w.locked, 0) < p_amount THEN
        v_refusal := 'insufficient_funds';
    ELSIF NOT (SELECT o.fiat_crypto_payouts FROM counterparties o WHERE o.id = p_operator)
          AND crypto_funded(w.id) < p_amount THEN
        v_refusal := 'not_crypto_funded';
    END IF;
    INSERT INTO crypto_payouts (id, operator_id, transaction_id, player_id, wallet_id, currency,
                                amount, asset, blockchain, address, coin_amount, rate, rail,
                                source_wallet, state, refusal, idempotency_key)
    VALUES (p_payout, p_operator, p_transaction_id, w.player_id, w.id, p_currency, p_amount,
            p_asset, p_blockchain, p_address, v_coin, v_rate, p_rail, p_source_wallet,
            CASE WHEN v_refusal IS NULL THEN 'held' ELSE 'refused' END, v_refusal, p_key)
    ON CONFLICT ON CONSTRAINT crypto_payouts_operator_transaction_unique DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'conflict'::text, NULL::uuid;
        RETURN;
    END IF;
    IF v_refusal IS NOT NULL THEN
        RETURN QUERY SELECT v_refusal, p_payout;
        RETURN;
    END IF;
    PERFORM ledger_post(w.id, w.player_id, NULL, NULL, p_payout, p_journal, 'payout_hold',
                        -p_amount);
    RETURN QUERY SELECT 'ok'::text, p_payout;
END
$$;

-- Locks a payout for a change in the ledger's lock order: its wallet first, then the payout
-- row. Returns the row (all fields NULL when there is no such payout).
CREATE FUNCTION crypto_payout_lock(p_payout uuid) RETURNS crypto_payouts
LANGUAGE plpgsql AS $$
DECLARE
    p  crypto_payouts%ROWTYPE;
BEGIN
    PERFORM 1 FROM wallets wl JOIN crypto_payouts cp ON cp.wallet_id = wl.id
     WHERE cp.id = p_payout FOR UPDATE OF wl;
    SELECT * INTO p FROM crypto_payouts cp WHERE cp.id = p_payout FOR UPDATE;
    RETURN p;
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
    p := crypto_payout_lock(p_payout);
    IF p.id IS NULL THEN
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

-- A person's decision on a payout waiting in review (after checking with the provider):
-- 'paid' or 'released'. Under the payout's lock, closes the review entries open now and ends
-- the payout; an entry a provider opens afterwards stays open. Returns applied | not_found |
-- not_in_review.
CREATE FUNCTION crypto_payout_settle(p_payout uuid, p_outcome text, p_journal uuid)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p  crypto_payouts%ROWTYPE;
BEGIN
    p := crypto_payout_lock(p_payout);
    IF p.id IS NULL THEN
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
