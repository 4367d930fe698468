-- Ledger posting: the one way a balance changes. Every caller (bets, transfers, crypto) holds
-- the wallet lock and posts through ledger_post, which writes the wallet and its journal rows
-- in the same statement pair.

-- Posts one or two journal legs to a wallet: one UPDATE of the wallet, one INSERT of the
-- legs. Each leg's balance_after is the running balance, so a two-leg call (PayInOut, the
-- refund of a settled bet) reads in the journal exactly as if its legs were posted one by
-- one. The caller holds the wallet lock and has checked that the balance stays non-negative;
-- the UPDATE asserts it again before writing (every leg's balance_after), and the CHECK
-- constraints on wallets and journal are the backstop.
CREATE FUNCTION ledger_post(
    p_wallet uuid, p_player uuid, p_provider text, p_bet text, p_transfer uuid,
    p_id1 uuid, p_kind1 text, p_amount1 numeric,
    p_id2 uuid DEFAULT NULL, p_kind2 text DEFAULT NULL, p_amount2 numeric DEFAULT NULL
) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    v_balance numeric;
    v_version bigint;
BEGIN
    IF p_id2 IS NULL THEN
        UPDATE wallets SET balance = balance + p_amount1, version = version + 1,
                           updated_at = now()
         WHERE id = p_wallet AND balance + p_amount1 >= 0
        RETURNING balance, version INTO v_balance, v_version;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'ledger_post: wallet % is missing or would go negative', p_wallet;
        END IF;
        INSERT INTO journal (id, wallet_id, player_id, seq, kind, amount, balance_after,
                             provider_id, bet_id, transfer_id)
        VALUES (p_id1, p_wallet, p_player, v_version, p_kind1, p_amount1, v_balance,
                p_provider, p_bet, p_transfer);
    ELSE
        UPDATE wallets SET balance = balance + p_amount1 + p_amount2, version = version + 2,
                           updated_at = now()
         WHERE id = p_wallet AND balance + p_amount1 >= 0
           AND balance + p_amount1 + p_amount2 >= 0
        RETURNING balance, version INTO v_balance, v_version;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'ledger_post: wallet % is missing or would go negative', p_wallet;
        END IF;
        INSERT INTO journal (id, wallet_id, player_id, seq, kind, amount, balance_after,
                             provider_id, bet_id, transfer_id)
        VALUES (p_id1, p_wallet, p_player, v_version - 1, p_kind1, p_amount1,
                v_balance - p_amount2, p_provider, p_bet, p_transfer),
               (p_id2, p_wallet, p_player, v_version, p_kind2, p_amount2, v_balance,
                p_provider, p_bet, p_transfer);
    END IF;
    RETURN v_balance;
END
$$;
