-- Crypto deposits (inabit): applying what inabit's API says of a deposit, and a person's
-- decisions on a deposit waiting in review. Journal kinds: crypto_deposit (+), crypto_reversal
-- (-); a locked deposit also adds its amount to `wallets.locked`.

-- Ends the locking of winnings (`wallets.locked_wins`, see bets.sql) once no deposit of the
-- wallet is unconfirmed any more. The caller holds the wallet's lock.
CREATE FUNCTION crypto_wins_release(p_wallet uuid) RETURNS void LANGUAGE sql AS $$
    UPDATE wallets w SET locked = w.locked - w.locked_wins, locked_wins = 0
     WHERE w.id = p_wallet AND w.locked_wins > 0
       AND NOT EXISTS (SELECT 1 FROM crypto_deposits d
                        WHERE d.wallet_id = p_wallet AND d.locked_amount > 0)
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
        SELECT wl.id, wl.player_id, wl.currency, wl.balance, wl.locked, wl.locked_wins INTO w
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
        PERFORM crypto_wins_release(w.id);
        RETURN QUERY SELECT 'applied'::text, d.id, 'completed'::text;
    ELSIF v_target = 'reversed' AND w.balance >= d.credited AND w.locked_wins = 0 THEN
        -- The coins never arrived: the credit is taken back whenever the wallet holds it
        -- and nothing was won while it was unconfirmed.
        PERFORM ledger_post(w.id, w.player_id, NULL, NULL, d.id, p_journal, 'crypto_reversal',
                            -d.credited);
        UPDATE wallets SET locked = locked - d.locked_amount WHERE id = w.id;
        UPDATE crypto_deposits cd SET state = 'reversed', credited = 0, locked_amount = 0
         WHERE cd.id = d.id;
        RETURN QUERY SELECT 'applied'::text, d.id, 'reversed'::text;
    ELSE
        -- Spent in play before it failed, won on while unconfirmed, a changed amount, or an
        -- under/overcharge after detection: the credit (and any locked winnings) stays
        -- locked, so what is left cannot be withdrawn, and a person decides
        -- (`crypto_deposit_settle`).
        v_reason := CASE WHEN v_target = 'reversed' AND w.locked_wins > 0
                         THEN 'failed_with_winnings'
                         WHEN v_target = 'reversed' THEN 'reversal_spent'
                         WHEN v_target = 'completed' THEN 'amount_changed'
                         ELSE v_status_reason END;
        UPDATE crypto_deposits cd SET state = 'review', review_reason = v_reason
         WHERE cd.id = d.id;
        PERFORM crypto_review('deposit', d.id, d.player_id, v_reason, p_status);
        RETURN QUERY SELECT 'review'::text, d.id, 'review'::text;
    END IF;
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
    PERFORM crypto_wins_release(w.id);
    UPDATE crypto_reviews SET resolved_at = now()
     WHERE subject_id = d.id AND resolved_at IS NULL;
    RETURN 'applied';
END
$$;

