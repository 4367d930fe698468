-- 0005: the operator setting "locked funds may be bet".
--
-- A locked crypto deposit (detected, not yet confirmed) counts in the balance. Whether it may
-- be staked is the operator's choice: `locked_play` true (the default) lets bets use the whole
-- balance; false lets them use only the unlocked part. Wins and refunds are never limited.
-- bet_batch and bet_one are the functions of 0002 with one change each: the balance a new bet
-- is checked against leaves out the locked part when the operator says so. Reading `locked`
-- comes with the wallet row each already locks, and `locked_play` with the operator row each
-- already reads: no extra query on the hot path.

ALTER TABLE counterparties ADD COLUMN locked_play boolean NOT NULL DEFAULT true;

CREATE OR REPLACE FUNCTION bet_batch(p_ops text[], p_providers text[], p_sessions uuid[], p_bets text[],
                          p_rounds text[], p_stakes numeric[], p_wins numeric[],
                          p_tx1 uuid[], p_tx2 uuid[], p_standalone boolean[])
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
BEGIN
    SELECT array_agg(id ORDER BY id), array_agg(player_id ORDER BY id),
           array_agg(balance ORDER BY id), array_agg(locked ORDER BY id),
           array_agg(version ORDER BY id), array_agg(false)
      INTO w_ids, w_players, w_balance, w_locked, w_version, w_moved
      FROM (SELECT w.id, w.player_id, w.balance, w.locked, w.version FROM wallets w
             WHERE w.id IN (SELECT wallet_id FROM sessions WHERE id = ANY (p_sessions))
             ORDER BY w.id
               FOR UPDATE) locked;

    SELECT array_agg(array_position(w_ids, ss.wallet_id) ORDER BY i.ord),
           array_agg(ss.status = 'open' AND ss.expires_at > now() ORDER BY i.ord),
           array_agg(pl.status = 'blocked' OR op.status <> 'active' ORDER BY i.ord),
           array_agg(coalesce(op.locked_play, true) ORDER BY i.ord)
      INTO c_wallet, c_live, c_blocked, c_locked_play
      FROM unnest(p_sessions, p_providers) WITH ORDINALITY AS i (session, provider, ord)
      LEFT JOIN sessions ss ON ss.id = i.session AND ss.provider_id = i.provider
      LEFT JOIN players pl ON pl.id = ss.player_id
      LEFT JOIN counterparties op ON op.id = pl.operator_id;

    FOR i IN 1 .. cardinality(p_ops) LOOP
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
        END IF;
        IF st.leg2_id IS NOT NULL THEN
            w_balance[k] := w_balance[k] + st.leg2_amount;
            w_version[k] := w_version[k] + 1;
            j_id := j_id || st.leg2_id;
            j_wallet := j_wallet || w_ids[k];
            j_player := j_player || w_players[k];
            j_seq := j_seq || w_version[k];
            j_kind := j_kind || st.leg2_kind;
            j_amount := j_amount || st.leg2_amount;
            j_after := j_after || w_balance[k];
            j_provider := j_provider || p_providers[i];
            j_bet := j_bet || p_bets[i];
        END IF;
        RETURN NEXT ROW(st.status, st.bet_tx, st.win_tx, st.refund_tx,
                        CASE WHEN st.status IN ('ok', 'duplicate') THEN w_balance[k] END
                       )::bet_outcome;
    END LOOP;

    IF cardinality(j_id) > 0 THEN
        UPDATE wallets w SET balance = m.balance, version = m.version, updated_at = now()
          FROM unnest(w_ids, w_balance, w_version, w_moved) AS m (id, balance, version, moved)
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
                        p_standalone boolean)
RETURNS bet_outcome LANGUAGE plpgsql AS $$
DECLARE
    s   record;
    st  bet_step;
    r   bet_outcome;
BEGIN
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
               pl.status = 'blocked' OR op.status <> 'active', op.locked_play
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
    ELSIF st.status IN ('ok', 'duplicate') THEN
        r.balance := s.balance;
    END IF;
    RETURN r;
END
$$;

