-- 0002: the ledger functions. Each provider call is one function, run as one statement, so a
-- bet is one database round trip: find and lock the wallet, check the idempotency record,
-- move the money, write the journal.
--
-- Locking: the only row locked is the player's wallet (FOR UPDATE), always first. Everything
-- a bet reads or writes afterwards belongs to that wallet, so two calls for one player are
-- serialised and calls for different players never wait on each other. In READ COMMITTED
-- each statement after the lock sees what the previous holder committed.
--
-- Outcomes are text statuses the application maps to wire codes:
--   ok, duplicate, insufficient_funds, session_not_found, bet_not_found, bet_closed,
--   blocked, conflict.

CREATE TYPE bet_outcome AS (
    status     text,
    bet_tx     uuid,
    win_tx     uuid,
    refund_tx  uuid,
    balance    numeric
);

-- Posts one or two journal legs to a wallet: one UPDATE of the wallet, one INSERT of the
-- legs. Each leg's balance_after is the running balance, so a two-leg call (PayInOut, the
-- refund of a settled bet) reads in the journal exactly as if its legs were posted one by
-- one. The caller holds the wallet lock and has checked that the balance stays non-negative;
-- the CHECK constraints on wallets and journal are the backstop.
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
         WHERE id = p_wallet
        RETURNING balance, version INTO v_balance, v_version;
        INSERT INTO journal (id, wallet_id, player_id, seq, kind, amount, balance_after,
                             provider_id, bet_id, transfer_id)
        VALUES (p_id1, p_wallet, p_player, v_version, p_kind1, p_amount1, v_balance,
                p_provider, p_bet, p_transfer);
    ELSE
        UPDATE wallets SET balance = balance + p_amount1 + p_amount2, version = version + 2,
                           updated_at = now()
         WHERE id = p_wallet
        RETURNING balance, version INTO v_balance, v_version;
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

-- What identifies a first call, to tell a repeat (same fingerprint) from a conflicting reuse
-- of the same betId. Amounts are compared by value: 10.5 and 10.50 are the same bet.
-- Written with immutable operators only (not concat_ws, which is merely stable) so that the
-- planner inlines it; a SQL function that is not inlined is parsed again at every call.
CREATE FUNCTION bet_fingerprint(p_kind text, p_wallet uuid, p_round text, p_stake numeric,
                                p_win numeric)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT p_kind || '|' || p_wallet::text || '|' || coalesce(p_round, '') || '|'
           || trim_scale(p_stake)::text || '|' || coalesce(trim_scale(p_win)::text, '')
$$;

-- Every ledger function starts the same way: the session the call is made on, joined to its
-- player and operator, with the wallet row locked (FOR UPDATE OF w). No row when the session
-- does not exist or belongs to another provider. The query is written out in each function
-- (plpgsql caches its plan) rather than called as a function of its own, which costs a
-- function call and a result set per bet.
--
--     SELECT w.id AS wallet_id, w.player_id, w.balance,
--            ss.status = 'open' AND ss.expires_at > now() AS live,
--            p.status = 'blocked' OR o.status <> 'active' AS blocked
--       FROM sessions ss JOIN wallets w ON w.id = ss.wallet_id
--       JOIN players p ON p.id = ss.player_id JOIN counterparties o ON o.id = p.operator_id
--      WHERE ss.id = p_session AND ss.provider_id = p_provider
--        FOR UPDATE OF w

-- The answer for a betId already recorded, to a call that would place it (PayIn, PayInOut).
CREATE FUNCTION bet_seen(b bets, p_wallet uuid, p_fingerprint text, p_balance numeric)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
DECLARE
    r bet_outcome;
BEGIN
    r.status := CASE
        WHEN b.wallet_id <> p_wallet THEN 'conflict'
        WHEN b.state IN ('refunded', 'tombstone') THEN 'bet_closed'
        WHEN b.fingerprint <> p_fingerprint THEN 'conflict'
        ELSE 'duplicate' END;
    IF r.status = 'duplicate' THEN
        r.bet_tx := b.bet_tx;
        r.win_tx := b.win_tx;
        r.balance := p_balance;
    END IF;
    RETURN r;
END
$$;

-- PayIn (p_win NULL) and PayInOut (p_win set): debit the stake, and for PayInOut credit the
-- win in the same step. The common case (a new bet that may be placed) is four statements:
-- lock, insert the bet, update the wallet, insert the journal. Only a refused or repeated
-- call looks further.
CREATE FUNCTION place_bet(
    p_kind text, p_provider text, p_session uuid, p_bet_id text, p_round text,
    p_stake numeric, p_win numeric, p_bet_tx uuid, p_win_tx uuid
) RETURNS bet_outcome LANGUAGE plpgsql AS $$
DECLARE
    s   record;
    b   bets%ROWTYPE;
    r   bet_outcome;
    fp  text;
BEGIN
    SELECT w.id AS wallet_id, w.player_id, w.balance,
           ss.status = 'open' AND ss.expires_at > now() AS live,
           p.status = 'blocked' OR o.status <> 'active' AS blocked
      INTO s
      FROM sessions ss JOIN wallets w ON w.id = ss.wallet_id
      JOIN players p ON p.id = ss.player_id JOIN counterparties o ON o.id = p.operator_id
     WHERE ss.id = p_session AND ss.provider_id = p_provider
       FOR UPDATE OF w;
    IF NOT FOUND THEN
        r.status := 'session_not_found';
        RETURN r;
    END IF;
    fp := bet_fingerprint(p_kind, s.wallet_id, p_round, p_stake, p_win);

    IF s.live AND NOT s.blocked AND s.balance >= p_stake THEN
        INSERT INTO bets (provider_id, bet_id, player_id, wallet_id, session_id, round_id, kind,
                          fingerprint, stake, win, state, bet_tx, win_tx, settled_at)
        VALUES (p_provider, p_bet_id, s.player_id, s.wallet_id, p_session, p_round, p_kind, fp,
                p_stake, p_win, CASE WHEN p_win IS NULL THEN 'open' ELSE 'settled' END,
                p_bet_tx, CASE WHEN p_win IS NULL THEN NULL ELSE p_win_tx END,
                CASE WHEN p_win IS NULL THEN NULL ELSE now() END)
        ON CONFLICT ON CONSTRAINT bets_pkey DO NOTHING;
        IF FOUND THEN
            IF p_win IS NULL THEN
                r.balance := ledger_post(s.wallet_id, s.player_id, p_provider, p_bet_id, NULL,
                                         p_bet_tx, 'bet', -p_stake);
            ELSE
                r.balance := ledger_post(s.wallet_id, s.player_id, p_provider, p_bet_id, NULL,
                                         p_bet_tx, 'bet', -p_stake, p_win_tx, 'win', p_win);
                r.win_tx := p_win_tx;
            END IF;
            r.status := 'ok';
            r.bet_tx := p_bet_tx;
            RETURN r;
        END IF;
    END IF;

    -- Not placed: a repeat (answered from the record, even if the session has expired since
    -- or the money is gone), or a refusal that leaves no trace.
    SELECT * INTO b FROM bets WHERE provider_id = p_provider AND bet_id = p_bet_id;
    IF FOUND THEN
        RETURN bet_seen(b, s.wallet_id, fp, s.balance);
    END IF;
    r.status := CASE WHEN NOT s.live THEN 'session_not_found'
                     WHEN s.blocked THEN 'blocked'
                     ELSE 'insufficient_funds' END;
    RETURN r;
END
$$;

CREATE FUNCTION pay_in(p_provider text, p_session uuid, p_bet_id text, p_round text,
                       p_stake numeric, p_bet_tx uuid)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
BEGIN
    RETURN place_bet('pay_in', p_provider, p_session, p_bet_id, p_round, p_stake, NULL,
                     p_bet_tx, NULL);
END
$$;

CREATE FUNCTION pay_in_out(p_provider text, p_session uuid, p_bet_id text, p_round text,
                           p_stake numeric, p_win numeric, p_bet_tx uuid, p_win_tx uuid)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
BEGIN
    RETURN place_bet('pay_in_out', p_provider, p_session, p_bet_id, p_round, p_stake, p_win,
                     p_bet_tx, p_win_tx);
END
$$;

-- PayOut: settle an open bet with its win (0 = lost). For a betId never seen, a standalone
-- (jackpot) win when the provider allows it. Session expiry does not matter: a win is owed.
CREATE FUNCTION pay_out(p_provider text, p_session uuid, p_bet_id text, p_round text,
                        p_win numeric, p_win_tx uuid, p_standalone_wins boolean)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
DECLARE
    s  record;
    b  bets%ROWTYPE;
    r  bet_outcome;
BEGIN
    SELECT w.id AS wallet_id, w.player_id, w.balance
      INTO s
      FROM sessions ss JOIN wallets w ON w.id = ss.wallet_id
     WHERE ss.id = p_session AND ss.provider_id = p_provider
       FOR UPDATE OF w;
    IF NOT FOUND THEN
        r.status := 'session_not_found';
        RETURN r;
    END IF;

    -- The common case: the bet is open on this wallet.
    UPDATE bets SET state = 'settled', win = p_win, win_tx = p_win_tx, settled_at = now()
     WHERE provider_id = p_provider AND bet_id = p_bet_id
       AND state = 'open' AND wallet_id = s.wallet_id
    RETURNING bet_tx INTO r.bet_tx;
    IF NOT FOUND THEN
        SELECT * INTO b FROM bets WHERE provider_id = p_provider AND bet_id = p_bet_id;
        IF FOUND THEN
            IF b.wallet_id <> s.wallet_id THEN
                r.status := 'conflict';
            ELSIF b.state IN ('refunded', 'tombstone') THEN
                r.status := 'bet_closed';
            ELSIF b.win = p_win THEN
                r.status := 'duplicate';
                r.bet_tx := b.bet_tx;
                r.win_tx := b.win_tx;
                r.balance := s.balance;
            ELSE
                r.status := 'conflict';
            END IF;
            RETURN r;
        END IF;
        IF NOT p_standalone_wins THEN
            r.status := 'bet_not_found';
            RETURN r;
        END IF;
        INSERT INTO bets (provider_id, bet_id, player_id, wallet_id, session_id, round_id,
                          kind, fingerprint, stake, win, state, win_tx, settled_at)
        VALUES (p_provider, p_bet_id, s.player_id, s.wallet_id, p_session, p_round,
                'pay_out', bet_fingerprint('pay_out', s.wallet_id, p_round, 0, p_win),
                0, p_win, 'settled', p_win_tx, now())
        ON CONFLICT ON CONSTRAINT bets_pkey DO NOTHING;
        IF NOT FOUND THEN
            r.status := 'conflict';
            RETURN r;
        END IF;
    END IF;

    r.balance := ledger_post(s.wallet_id, s.player_id, p_provider, p_bet_id, NULL,
                             p_win_tx, 'win', p_win);
    r.status := 'ok';
    r.win_tx := p_win_tx;
    RETURN r;
END
$$;

-- Refund: cancel a bet.
--   open      -> stake back;
--   settled   -> every leg reversed in one step (stake back, win taken back), refused with
--                insufficient_funds if the win was already spent;
--   unknown   -> a tombstone, so the bet, if it ever arrives, is refused (it was cancelled
--                before it reached us; applying it later would take money for a dead bet);
--   refunded  -> duplicate.
CREATE FUNCTION refund(p_provider text, p_session uuid, p_bet_id text, p_refund_tx uuid,
                       p_reversal_tx uuid)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
DECLARE
    s  record;
    b  bets%ROWTYPE;
    r  bet_outcome;
BEGIN
    SELECT w.id AS wallet_id, w.player_id, w.balance
      INTO s
      FROM sessions ss JOIN wallets w ON w.id = ss.wallet_id
     WHERE ss.id = p_session AND ss.provider_id = p_provider
       FOR UPDATE OF w;
    IF NOT FOUND THEN
        r.status := 'session_not_found';
        RETURN r;
    END IF;

    SELECT * INTO b FROM bets WHERE provider_id = p_provider AND bet_id = p_bet_id;
    IF NOT FOUND THEN
        INSERT INTO bets (provider_id, bet_id, player_id, wallet_id, session_id, kind,
                          fingerprint, stake, state, refund_tx, refunded_at)
        VALUES (p_provider, p_bet_id, s.player_id, s.wallet_id, p_session, 'refund',
                bet_fingerprint('refund', s.wallet_id, NULL, 0, NULL), 0, 'tombstone',
                p_refund_tx, now())
        ON CONFLICT ON CONSTRAINT bets_pkey DO NOTHING;
        IF FOUND THEN
            r.status := 'ok';
            r.refund_tx := p_refund_tx;
            r.balance := s.balance;
        ELSE
            r.status := 'conflict';
        END IF;
        RETURN r;
    END IF;
    IF b.wallet_id <> s.wallet_id THEN
        r.status := 'conflict';
        RETURN r;
    END IF;

    IF b.state IN ('refunded', 'tombstone') THEN
        r.status := 'duplicate';
        r.bet_tx := b.bet_tx;
        r.win_tx := b.win_tx;
        r.refund_tx := b.refund_tx;
        r.balance := s.balance;
        RETURN r;
    END IF;

    IF b.state = 'open' THEN
        r.balance := ledger_post(s.wallet_id, s.player_id, p_provider, p_bet_id, NULL,
                                 p_refund_tx, 'refund', b.stake);
    ELSE
        IF s.balance + b.stake - b.win < 0 THEN
            r.status := 'insufficient_funds';
            RETURN r;
        END IF;
        r.balance := ledger_post(s.wallet_id, s.player_id, p_provider, p_bet_id, NULL,
                                 p_refund_tx, 'refund', b.stake,
                                 p_reversal_tx, 'win_reversal', -b.win);
    END IF;
    UPDATE bets SET state = 'refunded', refund_tx = p_refund_tx, refunded_at = now()
     WHERE provider_id = p_provider AND bet_id = p_bet_id;
    r.status := 'ok';
    r.bet_tx := b.bet_tx;
    r.win_tx := b.win_tx;
    r.refund_tx := p_refund_tx;
    RETURN r;
END
$$;

-- Balance on a session: no lock, one read. No row when the session does not exist or belongs
-- to another provider.
CREATE FUNCTION session_balance(p_provider text, p_session uuid)
RETURNS TABLE (status text, balance numeric) LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT (s.status = 'open' AND s.expires_at > now()) THEN 'session_not_found'
                WHEN p.status = 'blocked' OR o.status <> 'active' THEN 'blocked'
                ELSE 'ok' END,
           w.balance
      FROM sessions s
      JOIN wallets w ON w.id = s.wallet_id
      JOIN players p ON p.id = s.player_id
      JOIN counterparties o ON o.id = p.operator_id
     WHERE s.id = p_session AND s.provider_id = p_provider
$$;

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
    SELECT wl.id, wl.player_id, wl.balance, wl.locked, pl.status = 'blocked' AS blocked INTO w
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

-- Group commit: several bet calls in one transaction, in the given order, one outcome per
-- call (a refusal is an outcome and does not fail its neighbours). Every wallet the batch
-- touches is locked first, in id order, so two batches never deadlock; the per-call
-- functions then find their wallet already locked by this transaction.
CREATE FUNCTION bet_batch(p_ops text[], p_providers text[], p_sessions uuid[], p_bets text[],
                          p_rounds text[], p_stakes numeric[], p_wins numeric[],
                          p_tx1 uuid[], p_tx2 uuid[], p_standalone boolean[])
RETURNS SETOF bet_outcome LANGUAGE plpgsql AS $$
DECLARE
    r bet_outcome;
BEGIN
    PERFORM 1 FROM wallets
     WHERE id IN (SELECT wallet_id FROM sessions WHERE id = ANY (p_sessions))
     ORDER BY id
       FOR UPDATE;
    FOR i IN 1 .. cardinality(p_ops) LOOP
        CASE p_ops[i]
            WHEN 'pay_in' THEN
                r := pay_in(p_providers[i], p_sessions[i], p_bets[i], p_rounds[i],
                            p_stakes[i], p_tx1[i]);
            WHEN 'pay_in_out' THEN
                r := pay_in_out(p_providers[i], p_sessions[i], p_bets[i], p_rounds[i],
                                p_stakes[i], p_wins[i], p_tx1[i], p_tx2[i]);
            WHEN 'pay_out' THEN
                r := pay_out(p_providers[i], p_sessions[i], p_bets[i], p_rounds[i],
                             p_wins[i], p_tx1[i], p_standalone[i]);
            WHEN 'refund' THEN
                r := refund(p_providers[i], p_sessions[i], p_bets[i], p_tx1[i], p_tx2[i]);
        END CASE;
        RETURN NEXT r;
    END LOOP;
END
$$;
