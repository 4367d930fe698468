-- The operator transfer API: deposits and withdrawals, and the time format of its history.

-- Deposit or withdrawal (p_kind 'deposit' | 'withdrawal'), idempotent by (operator,
-- transaction id). The same id with the same kind, player, currency and amount answers the
-- recorded outcome (a refusal too); anything else is a conflict. A withdrawal takes only the
-- withdrawable part (balance - locked); a blocked player takes no deposits.
CREATE FUNCTION transfer(p_kind text, p_operator text, p_external_id text, p_currency text,
                         p_amount numeric, p_transaction_id text, p_transfer uuid,
                         p_journal uuid)
RETURNS TABLE (status text, transfer_id uuid, balance numeric, created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    w  record;
    t  transfers%ROWTYPE;
    v_refusal text;
    v_balance numeric;
BEGIN
    SELECT wl.id, wl.player_id, wl.balance, wl.locked, pl.status <> 'active' AS blocked INTO w
      FROM players pl JOIN wallets wl ON wl.player_id = pl.id AND wl.currency = p_currency
     WHERE pl.operator_id = p_operator AND pl.external_id = p_external_id
       FOR UPDATE OF wl;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'player_not_found'::text, NULL::uuid, NULL::numeric, NULL::timestamptz;
        RETURN;
    END IF;

    SELECT * INTO t FROM transfers tr
     WHERE tr.operator_id = p_operator AND tr.transaction_id = p_transaction_id;
    IF FOUND THEN
        IF t.kind = p_kind AND t.wallet_id = w.id AND t.amount = p_amount THEN
            RETURN QUERY SELECT coalesce(t.refusal, 'duplicate'), t.id, t.balance_after,
                                t.created_at;
        ELSE
            RETURN QUERY SELECT 'conflict'::text, NULL::uuid, NULL::numeric, NULL::timestamptz;
        END IF;
        RETURN;
    END IF;

    IF p_kind = 'deposit' AND w.blocked THEN
        v_refusal := 'blocked';
    ELSIF p_kind = 'withdrawal' AND greatest(w.balance - w.locked, 0) < p_amount THEN
        v_refusal := 'insufficient_funds';
    END IF;

    INSERT INTO transfers (id, operator_id, transaction_id, player_id, wallet_id, kind,
                           amount, status, refusal, balance_after)
    VALUES (p_transfer, p_operator, p_transaction_id, w.player_id, w.id, p_kind, p_amount,
            CASE WHEN v_refusal IS NULL THEN 'completed' ELSE 'refused' END, v_refusal,
            w.balance)
    ON CONFLICT ON CONSTRAINT transfers_operator_transaction_unique DO NOTHING;
    IF NOT FOUND THEN
        -- The same id was used at this moment for another player's wallet.
        RETURN QUERY SELECT 'conflict'::text, NULL::uuid, NULL::numeric, NULL::timestamptz;
        RETURN;
    END IF;
    IF v_refusal IS NOT NULL THEN
        RETURN QUERY SELECT v_refusal, p_transfer, w.balance, now();
        RETURN;
    END IF;

    v_balance := ledger_post(w.id, w.player_id, NULL, NULL, p_transfer, p_journal, p_kind,
                             CASE WHEN p_kind = 'deposit' THEN p_amount ELSE -p_amount END);
    UPDATE transfers SET balance_after = v_balance WHERE id = p_transfer;
    RETURN QUERY SELECT 'ok'::text, p_transfer, v_balance, now();
END
$$;

-- A time given by an operator: epoch milliseconds ("1719766120806") or RFC 3339 text.
-- Integer arithmetic on milliseconds: no floating point between the caller and the time.
CREATE FUNCTION parse_time(p text) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p ~ '^[0-9]{1,15}$'
                THEN timestamptz 'epoch' + p::bigint * interval '1 millisecond'
                ELSE p::timestamptz END
$$;

