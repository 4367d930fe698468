-- The bet functions as they were before the set-based batch and the one-statement bet
-- (croupier 83f3261), kept for the benchmark's A/B series only: `loadtest bench` installs
-- them over the current ones in a database of their own and runs the same pgbench calls on
-- both. Never loaded by the server. (The types bet_outcome and bet_step are unchanged.)
--
-- Bets: the provider calls. Each call runs as one statement, so a bet is one database round
-- trip: lock the wallet, check the idempotency record, move the money, write the journal.
--
-- Structure: the decisions of each call (what a PayIn, PayOut, PayInOut or Refund does to
-- the bet record, and which journal legs it posts) live in one "step" function per call.
-- `bet_batch` runs any number of calls in one transaction: it locks their wallets, runs each
-- step in order against running balances, then writes every wallet and journal row at once.
-- `bet_one` runs a single call; pay_in, pay_out, pay_in_out and refund are that, by name.
--
-- Locking: the rows locked are the players' wallets (FOR UPDATE), first and in id order, so
-- two batches never deadlock. Everything a step reads or writes belongs to a locked wallet,
-- so calls for one player are serialised and calls for different players never wait on each
-- other. In READ COMMITTED each statement after the lock sees what the previous holder
-- committed.
--
-- Locked funds: a locked crypto deposit (detected, not yet confirmed) counts in the balance.
-- Whether it may be staked is the operator's `locked_play`: true lets bets use the whole
-- balance, false only the unlocked part. Wins and refunds are never limited, but while the
-- wallet holds locked funds that may be staked, what they credit is locked too
-- (`locked_wins`), until no deposit of the wallet is unconfirmed: a win on coins that never
-- arrive is not withdrawable. `locked` comes with the wallet row each function already locks,
-- `locked_play` with the operator row each already reads: no extra query on the hot path
-- unless the wallet holds locked funds.
--
-- A player or operator is taken as blocked unless its status is 'active': a status this code
-- does not know fails closed.
--
-- Outcomes are text statuses the application maps to wire codes:
--   ok, duplicate, insufficient_funds, session_not_found, bet_not_found, bet_closed,
--   blocked, conflict.

-- What identifies a first call, to tell a repeat (same fingerprint) from a conflicting reuse
-- of the same betId. Amounts are compared by value: 10.5 and 10.50 are the same bet.
-- Written with immutable operators only (not concat_ws, which is merely stable) so that the
-- planner inlines it; a SQL function that is not inlined is parsed again at every call.
CREATE OR REPLACE FUNCTION bet_fingerprint(p_kind text, p_wallet uuid, p_round text, p_stake numeric,
                                p_win numeric)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT p_kind || '|' || p_wallet::text || '|' || coalesce(p_round, '') || '|'
           || trim_scale(p_stake)::text || '|' || coalesce(trim_scale(p_win)::text, '')
$$;

-- What one step decided: the outcome, and up to two journal legs to post to the wallet.
-- PayIn (p_win NULL) and PayInOut (p_win set): a new bet debits the stake, and for PayInOut
-- credits the win in the same step. `c_*` is the call's context: its wallet (locked), the
-- wallet's running balance, whether the session takes bets and whether the player is blocked.
CREATE OR REPLACE FUNCTION bet_place_step(
    p_kind text, p_provider text, p_session uuid, p_bet_id text, p_round text,
    p_stake numeric, p_win numeric, p_bet_tx uuid, p_win_tx uuid,
    c_wallet uuid, c_player uuid, c_balance numeric, c_live boolean, c_blocked boolean
) RETURNS bet_step LANGUAGE plpgsql AS $$
DECLARE
    b   bets%ROWTYPE;
    st  bet_step;
    fp  text := bet_fingerprint(p_kind, c_wallet, p_round, p_stake, p_win);
BEGIN
    IF c_live AND NOT c_blocked AND c_balance >= p_stake THEN
        INSERT INTO bets (provider_id, bet_id, player_id, wallet_id, session_id, round_id, kind,
                          fingerprint, stake, win, state, bet_tx, win_tx, settled_at)
        VALUES (p_provider, p_bet_id, c_player, c_wallet, p_session, p_round, p_kind, fp,
                p_stake, p_win, CASE WHEN p_win IS NULL THEN 'open' ELSE 'settled' END,
                p_bet_tx, CASE WHEN p_win IS NULL THEN NULL ELSE p_win_tx END,
                CASE WHEN p_win IS NULL THEN NULL ELSE now() END)
        ON CONFLICT ON CONSTRAINT bets_pkey DO NOTHING;
        IF FOUND THEN
            st.status := 'ok';
            st.bet_tx := p_bet_tx;
            st.leg1_id := p_bet_tx;
            st.leg1_kind := 'bet';
            st.leg1_amount := -p_stake;
            IF p_win IS NOT NULL THEN
                st.win_tx := p_win_tx;
                st.leg2_id := p_win_tx;
                st.leg2_kind := 'win';
                st.leg2_amount := p_win;
            END IF;
            RETURN st;
        END IF;
    END IF;

    -- Not placed: a repeat (answered from the record, even if the session has expired since
    -- or the money is gone), or a refusal that leaves no trace.
    SELECT * INTO b FROM bets WHERE provider_id = p_provider AND bet_id = p_bet_id;
    IF FOUND THEN
        st.status := CASE
            WHEN b.wallet_id <> c_wallet THEN 'conflict'
            WHEN b.state IN ('refunded', 'tombstone') THEN 'bet_closed'
            WHEN b.fingerprint <> fp THEN 'conflict'
            ELSE 'duplicate' END;
        IF st.status = 'duplicate' THEN
            st.bet_tx := b.bet_tx;
            st.win_tx := b.win_tx;
        END IF;
        RETURN st;
    END IF;
    st.status := CASE WHEN NOT c_live THEN 'session_not_found'
                      WHEN c_blocked THEN 'blocked'
                      ELSE 'insufficient_funds' END;
    RETURN st;
END
$$;

-- PayOut: settle an open bet with its win (0 = lost). For a betId never seen, a standalone
-- (jackpot) win when the provider allows it. Session expiry and blocking do not matter: a
-- win is owed.
CREATE OR REPLACE FUNCTION bet_payout_step(
    p_provider text, p_session uuid, p_bet_id text, p_round text, p_win numeric,
    p_win_tx uuid, p_standalone_wins boolean, c_wallet uuid, c_player uuid
) RETURNS bet_step LANGUAGE plpgsql AS $$
DECLARE
    b   bets%ROWTYPE;
    st  bet_step;
BEGIN
    -- The common case: the bet is open on this wallet.
    UPDATE bets SET state = 'settled', win = p_win, win_tx = p_win_tx, settled_at = now()
     WHERE provider_id = p_provider AND bet_id = p_bet_id
       AND state = 'open' AND wallet_id = c_wallet
    RETURNING bet_tx INTO st.bet_tx;
    IF NOT FOUND THEN
        SELECT * INTO b FROM bets WHERE provider_id = p_provider AND bet_id = p_bet_id;
        IF FOUND THEN
            IF b.wallet_id <> c_wallet THEN
                st.status := 'conflict';
            ELSIF b.state IN ('refunded', 'tombstone') THEN
                st.status := 'bet_closed';
            ELSIF b.win = p_win THEN
                st.status := 'duplicate';
                st.bet_tx := b.bet_tx;
                st.win_tx := b.win_tx;
            ELSE
                st.status := 'conflict';
            END IF;
            RETURN st;
        END IF;
        IF NOT p_standalone_wins THEN
            st.status := 'bet_not_found';
            RETURN st;
        END IF;
        INSERT INTO bets (provider_id, bet_id, player_id, wallet_id, session_id, round_id,
                          kind, fingerprint, stake, win, state, win_tx, settled_at)
        VALUES (p_provider, p_bet_id, c_player, c_wallet, p_session, p_round,
                'pay_out', bet_fingerprint('pay_out', c_wallet, p_round, 0, p_win),
                0, p_win, 'settled', p_win_tx, now())
        ON CONFLICT ON CONSTRAINT bets_pkey DO NOTHING;
        IF NOT FOUND THEN
            st.status := 'conflict';
            RETURN st;
        END IF;
    END IF;
    st.status := 'ok';
    st.win_tx := p_win_tx;
    st.leg1_id := p_win_tx;
    st.leg1_kind := 'win';
    st.leg1_amount := p_win;
    RETURN st;
END
$$;

-- Refund: cancel a bet.
--   open      -> stake back;
--   settled   -> every leg reversed in one step (stake back, win taken back), refused with
--                insufficient_funds if the win was already spent;
--   unknown   -> a tombstone, so the bet, if it ever arrives, is refused (it was cancelled
--                before it reached us; applying it later would take money for a dead bet);
--   refunded  -> duplicate.
CREATE OR REPLACE FUNCTION bet_refund_step(
    p_provider text, p_session uuid, p_bet_id text, p_refund_tx uuid, p_reversal_tx uuid,
    c_wallet uuid, c_player uuid, c_balance numeric
) RETURNS bet_step LANGUAGE plpgsql AS $$
DECLARE
    b   bets%ROWTYPE;
    st  bet_step;
BEGIN
    SELECT * INTO b FROM bets WHERE provider_id = p_provider AND bet_id = p_bet_id;
    IF NOT FOUND THEN
        INSERT INTO bets (provider_id, bet_id, player_id, wallet_id, session_id, kind,
                          fingerprint, stake, state, refund_tx, refunded_at)
        VALUES (p_provider, p_bet_id, c_player, c_wallet, p_session, 'refund',
                bet_fingerprint('refund', c_wallet, NULL, 0, NULL), 0, 'tombstone',
                p_refund_tx, now())
        ON CONFLICT ON CONSTRAINT bets_pkey DO NOTHING;
        IF FOUND THEN
            st.status := 'ok';
            st.refund_tx := p_refund_tx;
        ELSE
            st.status := 'conflict';
        END IF;
        RETURN st;
    END IF;
    IF b.wallet_id <> c_wallet THEN
        st.status := 'conflict';
        RETURN st;
    END IF;
    st.bet_tx := b.bet_tx;
    st.win_tx := b.win_tx;
    IF b.state IN ('refunded', 'tombstone') THEN
        st.status := 'duplicate';
        st.refund_tx := b.refund_tx;
        RETURN st;
    END IF;
    IF b.state = 'settled' AND c_balance + b.stake - b.win < 0 THEN
        st.status := 'insufficient_funds';
        RETURN st;
    END IF;
    UPDATE bets SET state = 'refunded', refund_tx = p_refund_tx, refunded_at = now()
     WHERE provider_id = p_provider AND bet_id = p_bet_id;
    st.status := 'ok';
    st.refund_tx := p_refund_tx;
    st.leg1_id := p_refund_tx;
    st.leg1_kind := 'refund';
    st.leg1_amount := b.stake;
    IF b.state = 'settled' THEN
        st.leg2_id := p_reversal_tx;
        st.leg2_kind := 'win_reversal';
        st.leg2_amount := -b.win;
    END IF;
    RETURN st;
END
$$;

-- Runs bet calls in one transaction, in the given order, one outcome per call (a refusal is
-- an outcome and does not fail its neighbours). p_ops: pay_in | pay_in_out | pay_out |
-- refund; p_tx1/p_tx2 are the transaction ids a call writes if applied (the bet, win or
-- refund leg; PayInOut's win leg or a refund's win reversal).
--
-- 1. Lock every wallet of the batch, in id order, and read balance and version.
-- 2. Read each call's context (its session's wallet, whether it takes bets, whether the
--    player or operator is blocked); no context = session not found or another provider's.
-- 3. Run each call's step against the running balance of its wallet; collect its legs with
--    their journal sequence numbers and running balances.
-- 4. Write each wallet once and every journal row in one INSERT.
CREATE OR REPLACE FUNCTION bet_batch(p_ops text[], p_providers text[], p_sessions uuid[], p_bets text[],
                          p_rounds text[], p_stakes numeric[], p_wins numeric[],
                          p_tx1 uuid[], p_tx2 uuid[], p_standalone boolean[],
                          p_nonces uuid[])
RETURNS SETOF bet_outcome LANGUAGE plpgsql
-- With array parameters the planner's estimates make a custom plan look cheaper than the
-- cached generic one, so it would plan this function's queries again at every call (about a
-- millisecond); the generic plans are the right ones for every batch size.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    w_ids      uuid[];
    w_players  uuid[];
    w_balance  numeric[];
    w_locked   numeric[];
    w_version  bigint[];
    w_moved    boolean[];
    w_lockwin  numeric[];
    c_wallet   int[];
    c_live     boolean[];
    c_blocked  boolean[];
    c_locked_play boolean[];
    j_id       uuid[] := '{}';
    j_wallet   uuid[] := '{}';
    j_player   uuid[] := '{}';
    j_seq      bigint[] := '{}';
    j_kind     text[] := '{}';
    j_amount   numeric[] := '{}';
    j_after    numeric[] := '{}';
    j_provider text[] := '{}';
    j_bet      text[] := '{}';
    k          int;
    st         bet_step;
    r          bet_outcome;
    n          int := cardinality(p_ops);
    claimed    uuid[];
BEGIN
    -- Assertions paired with the caller's own limits: the combiner sends parallel arrays of
    -- at most 1000 calls (CROUPIER_BATCH_MAX is clamped to that). Anything else is a bug,
    -- refused before a single lock is taken.
    IF n > 1000 THEN
        RAISE EXCEPTION 'bet_batch: % calls, more than 1000', n;
    END IF;
    IF cardinality(p_providers) <> n OR cardinality(p_sessions) <> n
       OR cardinality(p_bets) <> n OR cardinality(p_rounds) <> n
       OR cardinality(p_stakes) <> n OR cardinality(p_wins) <> n
       OR cardinality(p_tx1) <> n OR cardinality(p_tx2) <> n
       OR cardinality(p_standalone) <> n OR cardinality(p_nonces) <> n THEN
        RAISE EXCEPTION 'bet_batch: the argument arrays differ in length';
    END IF;

    -- 0. Claim the calls' request ids (NULL: claimed elsewhere), in key order so that two
    -- batches claiming the same ids cannot deadlock. A call whose id was claimed before is
    -- a replay: refused, and it changes nothing.
    WITH ins AS (
        INSERT INTO request_nonces (counterparty_id, request_id)
        SELECT c.provider, c.nonce
          FROM unnest(p_providers, p_nonces) AS c (provider, nonce)
         WHERE c.nonce IS NOT NULL
         ORDER BY c.provider, c.nonce
        ON CONFLICT DO NOTHING
        RETURNING request_id)
    SELECT coalesce(array_agg(request_id), '{}') INTO claimed FROM ins;

    SELECT array_agg(id ORDER BY id), array_agg(player_id ORDER BY id),
           array_agg(balance ORDER BY id), array_agg(locked ORDER BY id),
           array_agg(version ORDER BY id), array_agg(false), array_agg(0::numeric)
      INTO w_ids, w_players, w_balance, w_locked, w_version, w_moved, w_lockwin
      FROM (SELECT w.id, w.player_id, w.balance, w.locked, w.version FROM wallets w
             WHERE w.id IN (SELECT wallet_id FROM sessions WHERE id = ANY (p_sessions))
             ORDER BY w.id
               FOR UPDATE) locked;

    SELECT array_agg(array_position(w_ids, ss.wallet_id) ORDER BY i.ord),
           array_agg(ss.status = 'open' AND ss.expires_at > now() ORDER BY i.ord),
           array_agg(pl.status <> 'active' OR op.status <> 'active' ORDER BY i.ord),
           array_agg(coalesce(op.locked_play, true) ORDER BY i.ord)
      INTO c_wallet, c_live, c_blocked, c_locked_play
      FROM unnest(p_sessions, p_providers) WITH ORDINALITY AS i (session, provider, ord)
      LEFT JOIN sessions ss ON ss.id = i.session AND ss.provider_id = i.provider
      LEFT JOIN players pl ON pl.id = ss.player_id
      LEFT JOIN counterparties op ON op.id = pl.operator_id;

    FOR i IN 1 .. n LOOP
        IF p_nonces[i] IS NOT NULL AND NOT (p_nonces[i] = ANY (claimed)) THEN
            RETURN NEXT ROW('replayed', NULL, NULL, NULL, NULL)::bet_outcome;
            CONTINUE;
        END IF;
        k := c_wallet[i];
        IF k IS NULL THEN
            RETURN NEXT ROW('session_not_found', NULL, NULL, NULL, NULL)::bet_outcome;
            CONTINUE;
        END IF;
        st := CASE p_ops[i]
            WHEN 'pay_out' THEN
                bet_payout_step(p_providers[i], p_sessions[i], p_bets[i], p_rounds[i],
                                p_wins[i], p_tx1[i], p_standalone[i], w_ids[k], w_players[k])
            WHEN 'refund' THEN
                bet_refund_step(p_providers[i], p_sessions[i], p_bets[i], p_tx1[i], p_tx2[i],
                                w_ids[k], w_players[k], w_balance[k])
            ELSE
                bet_place_step(p_ops[i], p_providers[i], p_sessions[i], p_bets[i],
                               p_rounds[i], p_stakes[i], p_wins[i], p_tx1[i], p_tx2[i],
                               w_ids[k], w_players[k],
                               w_balance[k] - CASE WHEN c_locked_play[i] THEN 0
                                                   ELSE least(w_locked[k], w_balance[k]) END,
                               c_live[i], c_blocked[i])
            END;
        IF st.leg1_id IS NOT NULL THEN
            w_balance[k] := w_balance[k] + st.leg1_amount;
            w_version[k] := w_version[k] + 1;
            -- Paired with the CHECKs on wallets and journal: a step that lets a running
            -- balance go negative is a bug, stopped before anything is written.
            IF w_balance[k] < 0 THEN
                RAISE EXCEPTION 'bet_batch: wallet % would go negative', w_ids[k];
            END IF;
            w_moved[k] := true;
            j_id := j_id || st.leg1_id;
            j_wallet := j_wallet || w_ids[k];
            j_player := j_player || w_players[k];
            j_seq := j_seq || w_version[k];
            j_kind := j_kind || st.leg1_kind;
            j_amount := j_amount || st.leg1_amount;
            j_after := j_after || w_balance[k];
            j_provider := j_provider || p_providers[i];
            j_bet := j_bet || p_bets[i];
            IF st.leg1_amount > 0 AND w_locked[k] > 0 AND c_locked_play[i] THEN
                w_lockwin[k] := w_lockwin[k] + st.leg1_amount;
            END IF;
        END IF;
        IF st.leg2_id IS NOT NULL THEN
            w_balance[k] := w_balance[k] + st.leg2_amount;
            w_version[k] := w_version[k] + 1;
            IF w_balance[k] < 0 THEN
                RAISE EXCEPTION 'bet_batch: wallet % would go negative', w_ids[k];
            END IF;
            j_id := j_id || st.leg2_id;
            j_wallet := j_wallet || w_ids[k];
            j_player := j_player || w_players[k];
            j_seq := j_seq || w_version[k];
            j_kind := j_kind || st.leg2_kind;
            j_amount := j_amount || st.leg2_amount;
            j_after := j_after || w_balance[k];
            j_provider := j_provider || p_providers[i];
            j_bet := j_bet || p_bets[i];
            IF st.leg2_amount > 0 AND w_locked[k] > 0 AND c_locked_play[i] THEN
                w_lockwin[k] := w_lockwin[k] + st.leg2_amount;
            END IF;
        END IF;
        RETURN NEXT ROW(st.status, st.bet_tx, st.win_tx, st.refund_tx,
                        CASE WHEN st.status IN ('ok', 'duplicate') THEN w_balance[k] END
                       )::bet_outcome;
    END LOOP;

    IF cardinality(j_id) > 0 THEN
        UPDATE wallets w SET balance = m.balance, version = m.version, updated_at = now(),
               locked = w.locked + m.lockwin, locked_wins = w.locked_wins + m.lockwin
          FROM unnest(w_ids, w_balance, w_version, w_moved, w_lockwin)
               AS m (id, balance, version, moved, lockwin)
         WHERE w.id = m.id AND m.moved;
        INSERT INTO journal (id, wallet_id, player_id, seq, kind, amount, balance_after,
                             provider_id, bet_id)
        SELECT * FROM unnest(j_id, j_wallet, j_player, j_seq, j_kind, j_amount, j_after,
                             j_provider, j_bet);
    END IF;
END
$$;

-- One call alone, in its own transaction: what the server runs when group commit is off or a
-- batch has one call. The same step as in a batch, with the wallet locked through the session
-- in one query and the legs posted by ledger_post.
CREATE OR REPLACE FUNCTION bet_one(p_op text, p_provider text, p_session uuid, p_bet_id text,
                        p_round text, p_stake numeric, p_win numeric, p_tx1 uuid, p_tx2 uuid,
                        p_standalone boolean, p_nonce uuid)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
DECLARE
    s   record;
    st  bet_step;
    r   bet_outcome;
    v_credit numeric;
BEGIN
    -- The call's request id, claimed in the call's own transaction (NULL: claimed
    -- elsewhere). Claimed before: a replay, refused.
    IF p_nonce IS NOT NULL THEN
        INSERT INTO request_nonces (counterparty_id, request_id) VALUES (p_provider, p_nonce)
            ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            r.status := 'replayed';
            RETURN r;
        END IF;
    END IF;
    SELECT w.id AS wallet_id, w.player_id, w.balance, w.locked, false AS live,
           false AS blocked, true AS locked_play
      INTO s
      FROM sessions ss JOIN wallets w ON w.id = ss.wallet_id
     WHERE ss.id = p_session AND ss.provider_id = p_provider
       FOR UPDATE OF w;
    IF NOT FOUND THEN
        r.status := 'session_not_found';
        RETURN r;
    END IF;
    -- Read after the lock, in a statement of its own: a statement that waited for the lock
    -- re-reads only the locked row, so session and player state read in the locking
    -- statement could predate a change committed while it waited.
    IF p_op IN ('pay_in', 'pay_in_out') THEN
        SELECT ss.status = 'open' AND ss.expires_at > now(),
               pl.status <> 'active' OR op.status <> 'active', op.locked_play
          INTO s.live, s.blocked, s.locked_play
          FROM sessions ss
          JOIN players pl ON pl.id = ss.player_id
          JOIN counterparties op ON op.id = pl.operator_id
         WHERE ss.id = p_session;
    END IF;
    st := CASE p_op
        WHEN 'pay_out' THEN
            bet_payout_step(p_provider, p_session, p_bet_id, p_round, p_win, p_tx1,
                            p_standalone, s.wallet_id, s.player_id)
        WHEN 'refund' THEN
            bet_refund_step(p_provider, p_session, p_bet_id, p_tx1, p_tx2, s.wallet_id,
                            s.player_id, s.balance)
        ELSE
            bet_place_step(p_op, p_provider, p_session, p_bet_id, p_round, p_stake, p_win,
                           p_tx1, p_tx2, s.wallet_id, s.player_id,
                           s.balance - CASE WHEN s.locked_play THEN 0
                                            ELSE least(s.locked, s.balance) END,
                           s.live, s.blocked)
        END;
    r.status := st.status;
    r.bet_tx := st.bet_tx;
    r.win_tx := st.win_tx;
    r.refund_tx := st.refund_tx;
    IF st.leg1_id IS NOT NULL THEN
        r.balance := ledger_post(s.wallet_id, s.player_id, p_provider, p_bet_id, NULL,
                                 st.leg1_id, st.leg1_kind, st.leg1_amount,
                                 st.leg2_id, st.leg2_kind, st.leg2_amount);
        v_credit := greatest(st.leg1_amount, 0) + greatest(coalesce(st.leg2_amount, 0), 0);
        IF s.locked > 0 AND v_credit > 0 THEN
            UPDATE wallets w SET locked = w.locked + v_credit,
                   locked_wins = w.locked_wins + v_credit
             WHERE w.id = s.wallet_id
               AND (SELECT op.locked_play FROM players pl
                      JOIN counterparties op ON op.id = pl.operator_id
                     WHERE pl.id = s.player_id);
        END IF;
    ELSIF st.status IN ('ok', 'duplicate') THEN
        r.balance := s.balance;
    END IF;
    RETURN r;
END
$$;

-- The four calls by name, one call each.
CREATE OR REPLACE FUNCTION pay_in(p_provider text, p_session uuid, p_bet_id text, p_round text,
                       p_stake numeric, p_bet_tx uuid, p_nonce uuid DEFAULT NULL)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
BEGIN
    RETURN bet_one('pay_in', p_provider, p_session, p_bet_id, p_round, p_stake, NULL,
                   p_bet_tx, NULL, false, p_nonce);
END
$$;

CREATE OR REPLACE FUNCTION pay_in_out(p_provider text, p_session uuid, p_bet_id text, p_round text,
                           p_stake numeric, p_win numeric, p_bet_tx uuid, p_win_tx uuid,
                           p_nonce uuid DEFAULT NULL)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
BEGIN
    RETURN bet_one('pay_in_out', p_provider, p_session, p_bet_id, p_round, p_stake, p_win,
                   p_bet_tx, p_win_tx, false, p_nonce);
END
$$;

CREATE OR REPLACE FUNCTION pay_out(p_provider text, p_session uuid, p_bet_id text, p_round text,
                        p_win numeric, p_win_tx uuid, p_standalone_wins boolean,
                        p_nonce uuid DEFAULT NULL)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
BEGIN
    RETURN bet_one('pay_out', p_provider, p_session, p_bet_id, p_round, NULL, p_win,
                   p_win_tx, NULL, p_standalone_wins, p_nonce);
END
$$;

CREATE OR REPLACE FUNCTION refund(p_provider text, p_session uuid, p_bet_id text, p_refund_tx uuid,
                       p_reversal_tx uuid, p_nonce uuid DEFAULT NULL)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
BEGIN
    RETURN bet_one('refund', p_provider, p_session, p_bet_id, NULL, NULL, NULL, p_refund_tx,
                   p_reversal_tx, false, p_nonce);
END
$$;

-- Balance on a session: no lock, one read. No row when the session does not exist or belongs
-- to another provider.
CREATE OR REPLACE FUNCTION session_balance(p_provider text, p_session uuid)
RETURNS TABLE (status text, balance numeric) LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN NOT (s.status = 'open' AND s.expires_at > now()) THEN 'session_not_found'
                WHEN p.status <> 'active' OR o.status <> 'active' THEN 'blocked'
                ELSE 'ok' END,
           w.balance
      FROM sessions s
      JOIN wallets w ON w.id = s.wallet_id
      JOIN players p ON p.id = s.player_id
      JOIN counterparties o ON o.id = p.operator_id
     WHERE s.id = p_session AND s.provider_id = p_provider
$$;
