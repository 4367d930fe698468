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

-- Posts journal legs to one wallet: one UPDATE of the wallet, one INSERT of all legs. Each
-- leg's balance_after is the running balance, so a multi-leg call (PayInOut, the refund of a
-- settled bet) reads in the journal exactly as if its legs had been posted one by one.
-- The caller holds the wallet lock and has checked that the balance stays non-negative; the
-- CHECK constraints on wallets and journal are the backstop.
CREATE FUNCTION ledger_post(
    p_wallet uuid, p_player uuid, p_ids uuid[], p_kinds text[], p_amounts numeric[],
    p_provider text, p_bet text, p_transfer uuid
) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    v_legs    int     := cardinality(p_amounts);
    v_total   numeric := 0;
    v_balance numeric;
    v_version bigint;
    v_amount  numeric;
BEGIN
    FOREACH v_amount IN ARRAY p_amounts LOOP
        v_total := v_total + v_amount;
    END LOOP;
    UPDATE wallets
       SET balance = balance + v_total, version = version + v_legs, updated_at = now()
     WHERE id = p_wallet
    RETURNING balance, version INTO v_balance, v_version;
    INSERT INTO journal (id, wallet_id, player_id, seq, kind, amount, balance_after,
                         provider_id, bet_id, transfer_id)
    SELECT leg.id, p_wallet, p_player, v_version - v_legs + leg.ord, leg.kind, leg.amount,
           v_balance - v_total + sum(leg.amount) OVER (ORDER BY leg.ord),
           p_provider, p_bet, p_transfer
      FROM unnest(p_ids, p_kinds, p_amounts) WITH ORDINALITY AS leg (id, kind, amount, ord);
    RETURN v_balance;
END
$$;

-- The session a provider call is made on, with its wallet locked. No row when the session
-- does not exist or belongs to another provider. A player counts as blocked when the player
-- or the player's operator is.
CREATE FUNCTION bet_session_lock(p_provider text, p_session uuid)
RETURNS TABLE (wallet_id uuid, player_id uuid, balance numeric, session_live boolean,
               player_blocked boolean)
LANGUAGE sql AS $$
    SELECT w.id, w.player_id, w.balance,
           s.status = 'open' AND s.expires_at > now(),
           p.status = 'blocked' OR o.status <> 'active'
      FROM sessions s
      JOIN wallets w ON w.id = s.wallet_id
      JOIN players p ON p.id = s.player_id
      JOIN counterparties o ON o.id = p.operator_id
     WHERE s.id = p_session AND s.provider_id = p_provider
       FOR UPDATE OF w
$$;

-- What identifies a first call, to tell a repeat (same fingerprint) from a conflicting reuse
-- of the same betId. Amounts are compared by value: 10.5 and 10.50 are the same bet.
CREATE FUNCTION bet_fingerprint(p_kind text, p_wallet uuid, p_round text, p_stake numeric,
                                p_win numeric)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT concat_ws('|', p_kind, p_wallet::text, coalesce(p_round, ''),
                     trim_scale(p_stake)::text, coalesce(trim_scale(p_win)::text, ''))
$$;

-- PayIn (p_win NULL) and PayInOut (p_win set): debit the stake, and for PayInOut credit the
-- win in the same step.
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
    SELECT * INTO s FROM bet_session_lock(p_provider, p_session);
    IF NOT FOUND THEN
        r.status := 'session_not_found';
        RETURN r;
    END IF;
    fp := bet_fingerprint(p_kind, s.wallet_id, p_round, p_stake, p_win);

    SELECT * INTO b FROM bets WHERE provider_id = p_provider AND bet_id = p_bet_id;
    IF FOUND THEN
        -- Seen before: answer from the record, apply nothing.
        r.status := CASE
            WHEN b.wallet_id <> s.wallet_id THEN 'conflict'
            WHEN b.state IN ('refunded', 'tombstone') THEN 'bet_closed'
            WHEN b.fingerprint <> fp THEN 'conflict'
            ELSE 'duplicate' END;
        IF r.status = 'duplicate' THEN
            r.bet_tx := b.bet_tx;
            r.win_tx := b.win_tx;
            r.balance := s.balance;
        END IF;
        RETURN r;
    END IF;

    IF NOT s.session_live THEN
        r.status := 'session_not_found';
        RETURN r;
    END IF;
    IF s.player_blocked THEN
        r.status := 'blocked';
        RETURN r;
    END IF;
    IF s.balance < p_stake THEN
        r.status := 'insufficient_funds';
        RETURN r;
    END IF;

    INSERT INTO bets (provider_id, bet_id, player_id, wallet_id, session_id, round_id, kind,
                      fingerprint, stake, win, state, bet_tx, win_tx, settled_at)
    VALUES (p_provider, p_bet_id, s.player_id, s.wallet_id, p_session, p_round, p_kind, fp,
            p_stake, p_win, CASE WHEN p_win IS NULL THEN 'open' ELSE 'settled' END,
            p_bet_tx, CASE WHEN p_win IS NULL THEN NULL ELSE p_win_tx END,
            CASE WHEN p_win IS NULL THEN NULL ELSE now() END)
    ON CONFLICT ON CONSTRAINT bets_pkey DO NOTHING;
    IF NOT FOUND THEN
        -- The same betId was placed at this moment on another player's wallet.
        r.status := 'conflict';
        RETURN r;
    END IF;

    IF p_win IS NULL THEN
        r.balance := ledger_post(s.wallet_id, s.player_id, ARRAY[p_bet_tx], ARRAY['bet'],
                                 ARRAY[-p_stake], p_provider, p_bet_id, NULL);
    ELSE
        r.balance := ledger_post(s.wallet_id, s.player_id, ARRAY[p_bet_tx, p_win_tx],
                                 ARRAY['bet', 'win'], ARRAY[-p_stake, p_win],
                                 p_provider, p_bet_id, NULL);
        r.win_tx := p_win_tx;
    END IF;
    r.status := 'ok';
    r.bet_tx := p_bet_tx;
    RETURN r;
END
$$;

CREATE FUNCTION pay_in(p_provider text, p_session uuid, p_bet_id text, p_round text,
                       p_stake numeric, p_bet_tx uuid)
RETURNS bet_outcome LANGUAGE sql AS $$
    SELECT place_bet('pay_in', p_provider, p_session, p_bet_id, p_round, p_stake, NULL,
                     p_bet_tx, NULL)
$$;

CREATE FUNCTION pay_in_out(p_provider text, p_session uuid, p_bet_id text, p_round text,
                           p_stake numeric, p_win numeric, p_bet_tx uuid, p_win_tx uuid)
RETURNS bet_outcome LANGUAGE sql AS $$
    SELECT place_bet('pay_in_out', p_provider, p_session, p_bet_id, p_round, p_stake, p_win,
                     p_bet_tx, p_win_tx)
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
    SELECT * INTO s FROM bet_session_lock(p_provider, p_session);
    IF NOT FOUND THEN
        r.status := 'session_not_found';
        RETURN r;
    END IF;

    SELECT * INTO b FROM bets WHERE provider_id = p_provider AND bet_id = p_bet_id;
    IF NOT FOUND THEN
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
    ELSIF b.wallet_id <> s.wallet_id THEN
        r.status := 'conflict';
        RETURN r;
    ELSIF b.state IN ('refunded', 'tombstone') THEN
        r.status := 'bet_closed';
        RETURN r;
    ELSIF b.state = 'settled' THEN
        IF b.win = p_win THEN
            r.status := 'duplicate';
            r.bet_tx := b.bet_tx;
            r.win_tx := b.win_tx;
            r.balance := s.balance;
        ELSE
            r.status := 'conflict';
        END IF;
        RETURN r;
    ELSE
        UPDATE bets SET state = 'settled', win = p_win, win_tx = p_win_tx, settled_at = now()
         WHERE provider_id = p_provider AND bet_id = p_bet_id;
        r.bet_tx := b.bet_tx;
    END IF;

    r.balance := ledger_post(s.wallet_id, s.player_id, ARRAY[p_win_tx], ARRAY['win'],
                             ARRAY[p_win], p_provider, p_bet_id, NULL);
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
    SELECT * INTO s FROM bet_session_lock(p_provider, p_session);
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
        r.status := CASE WHEN FOUND THEN 'ok' ELSE 'conflict' END;
        IF FOUND THEN
            r.refund_tx := p_refund_tx;
            r.balance := s.balance;
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
        r.balance := ledger_post(s.wallet_id, s.player_id, ARRAY[p_refund_tx], ARRAY['refund'],
                                 ARRAY[b.stake], p_provider, p_bet_id, NULL);
    ELSE
        IF s.balance + b.stake - b.win < 0 THEN
            r.status := 'insufficient_funds';
            RETURN r;
        END IF;
        r.balance := ledger_post(s.wallet_id, s.player_id, ARRAY[p_refund_tx, p_reversal_tx],
                                 ARRAY['refund', 'win_reversal'], ARRAY[b.stake, -b.win],
                                 p_provider, p_bet_id, NULL);
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

    v_balance := ledger_post(w.id, w.player_id, ARRAY[p_journal], ARRAY[p_kind],
                             ARRAY[CASE WHEN p_kind = 'deposit' THEN p_amount ELSE -p_amount END],
                             NULL, NULL, p_transfer);
    UPDATE transfers SET balance_after = v_balance WHERE id = p_transfer;
    RETURN QUERY SELECT 'ok'::text, p_transfer, v_balance, now();
END
$$;
