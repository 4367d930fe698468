-- Seamless mode, many calls at once: what the engine's combiners run when several provider
-- calls (or several attempts' outcomes) are waiting together. One transaction, one round trip
-- and one commit for all of them, with the same decisions as `seamless_call` and
-- `seamless_record` one by one.
--
-- Each function settles the common case set-based (a statement writes the rows of every call
-- that takes it, so PostgreSQL's per-statement costs, constraint checks included, are paid
-- once per batch), and hands every other call to the one-call function, in arrival order:
--
--   seamless_call_batch    new PayIns and PayInOuts: the bet, its legs, the debit leased;
--   seamless_record_batch  an applied verdict on a leg this process sent (-1, 1 or 4).
--
-- Lock order, as in the one-call functions: every bet of the batch first (in bet_no order,
-- in one statement), then their legs (in id order). Two batches never wait on each other in
-- opposite orders. Answers carry the item (1-based) they belong to.

CREATE TYPE seamless_item_view AS (
    item              integer,
    status            text,
    bet_no            bigint,
    leg_id            uuid,
    transaction_type  smallint,
    state             text,
    meaning           text,
    balance           numeric,
    partner_tx        text,
    leased            boolean,
    data              text,
    attempts          integer
);

CREATE FUNCTION seamless_call_batch(
    p_ops text[], p_providers text[], p_sessions uuid[], p_bet_ids text[], p_rounds text[],
    p_amounts numeric[], p_wins numeric[], p_standalone_wins boolean[], p_send_close boolean[],
    p_tx1 uuid[], p_tx2 uuid[], p_close_tx uuid[], p_owner uuid, p_lease_s float8[]
) RETURNS SETOF seamless_item_view LANGUAGE plpgsql
-- Generic plans, as for bet_batch: array parameters make every custom plan look cheaper, and
-- planning again at every call costs more than the batch; no sequential scan, as in
-- `seamless.sql`.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    n        int := cardinality(p_ops);
    f_items  int[];
    f_bets   bigint[];
    f_users  text[];
    e_bets   bigint[];
    e_items  int[];
    k        int;
BEGIN
    -- Paired with the combiner's own bound and its parallel arrays.
    IF n > 1000 THEN
        RAISE EXCEPTION 'seamless_call_batch: % calls, more than 1000', n;
    END IF;
    IF cardinality(p_providers) <> n OR cardinality(p_sessions) <> n
       OR cardinality(p_bet_ids) <> n OR cardinality(p_rounds) <> n
       OR cardinality(p_amounts) <> n OR cardinality(p_wins) <> n
       OR cardinality(p_standalone_wins) <> n OR cardinality(p_send_close) <> n
       OR cardinality(p_tx1) <> n OR cardinality(p_tx2) <> n
       OR cardinality(p_close_tx) <> n OR cardinality(p_lease_s) <> n THEN
        RAISE EXCEPTION 'seamless_call_batch: the argument arrays differ in length';
    END IF;

    -- The batch's existing bets, locked in bet_no order before anything else. (Each lookup
    -- is fenced, OFFSET 0, to stay an index probe whatever the table's statistics say.)
    SELECT array_agg(DISTINCT x.bet_no), array_agg(u.ord::int)
      INTO e_bets, e_items
      FROM unnest(p_providers, p_bet_ids) WITH ORDINALITY AS u (provider, bet_id, ord)
      JOIN LATERAL (SELECT b.bet_no FROM seamless_bets b
                     WHERE b.provider_id = u.provider AND b.bet_id = u.bet_id OFFSET 0) x
        ON true;
    e_items := coalesce(e_items, '{}');
    PERFORM 1 FROM seamless_bets b WHERE b.bet_no = ANY (e_bets) ORDER BY b.bet_no FOR UPDATE;

    -- New bets: a PayIn or PayInOut on a live session of an active player, whose betId is
    -- unknown and appears once in the batch. A conflict with a bet another transaction has
    -- just made leaves the call to the one-call path below.
    WITH calls AS (
        SELECT i.ord::int AS ord, i.op, i.provider, i.session, i.bet_id, i.round, i.amount,
               i.win, count(*) OVER (PARTITION BY i.provider, i.bet_id) AS copies
          FROM unnest(p_ops, p_providers, p_sessions, p_bet_ids, p_rounds, p_amounts, p_wins)
               WITH ORDINALITY AS i (op, provider, session, bet_id, round, amount, win, ord)
    ), fresh AS (
        SELECT c.ord, c.op, c.provider, c.session, c.bet_id, c.round, c.amount, c.win,
               x.player_id, x.external_id, x.operator_id, x.currency
          FROM calls c
          JOIN LATERAL (
              SELECT s.player_id, p.external_id, p.operator_id, w.currency
                FROM sessions s
                JOIN players p ON p.id = s.player_id
                JOIN wallets w ON w.id = s.wallet_id
                JOIN counterparties o ON o.id = p.operator_id
               WHERE s.id = c.session AND s.provider_id = c.provider
                 AND s.status = 'open' AND s.expires_at > now()
                 AND p.status = 'active' AND o.status = 'active'
              OFFSET 0) x ON true
         WHERE c.op IN ('pay_in', 'pay_in_out') AND c.copies = 1 AND c.ord <> ALL (e_items)
    ), made AS (
        INSERT INTO seamless_bets (provider_id, bet_id, session_id, operator_id, player_id,
                                   currency, round_id, kind, fingerprint, stake, win, state)
        SELECT f.provider, f.bet_id, f.session, f.operator_id, f.player_id, f.currency, f.round,
               f.op, bet_fingerprint(f.op, f.player_id, f.round, f.amount, f.win), f.amount,
               f.win, CASE WHEN f.op = 'pay_in_out' THEN 'settled' ELSE 'open' END
          FROM fresh f ORDER BY f.provider, f.bet_id
        ON CONFLICT ON CONSTRAINT seamless_bets_provider_bet_unique DO NOTHING
        RETURNING bet_no, provider_id, bet_id
    )
    SELECT array_agg(f.ord ORDER BY f.ord), array_agg(m.bet_no ORDER BY f.ord),
           array_agg(f.external_id ORDER BY f.ord)
      INTO f_items, f_bets, f_users
      FROM made m JOIN fresh f ON f.provider = m.provider_id AND f.bet_id = m.bet_id;
    f_items := coalesce(f_items, '{}');
    f_bets := coalesce(f_bets, '{}');
    f_users := coalesce(f_users, '{}');

    -- Their legs, answered as written: the debit, leased to this caller at once (nothing
    -- precedes it), and for a PayInOut the win after it, due for the retry job as every
    -- credit is.
    RETURN QUERY
    WITH written AS (
        INSERT INTO seamless_legs (id, bet_no, seq, transaction_type, amount, data, state,
                                   attempts, lease_owner, lease_until, last_sent_at,
                                   next_attempt_at)
        SELECT p_tx1[f.k], f.b, 1, -1, p_amounts[f.k],
               seamless_make_data(f.b, -1::smallint, p_amounts[f.k], f.u), 'sent', 1,
               p_owner, now() + make_interval(secs => p_lease_s[f.k]), now(), NULL
          FROM unnest(f_items, f_bets, f_users) AS f (k, b, u)
        UNION ALL
        SELECT p_tx2[f.k], f.b, 2, 1, p_wins[f.k],
               seamless_make_data(f.b, 1::smallint, p_wins[f.k], f.u), 'pending', 0,
               NULL, NULL, NULL, now()
          FROM unnest(f_items, f_bets, f_users) AS f (k, b, u)
         WHERE p_ops[f.k] = 'pay_in_out'
        RETURNING bet_no, id, seq, transaction_type, state, data, attempts
    )
    SELECT f.k, CASE WHEN w.seq = 1 THEN 'new' END, w.bet_no, w.id, w.transaction_type,
           w.state, NULL::text, NULL::numeric, NULL::text, w.seq = 1,
           CASE WHEN w.seq = 1 THEN w.data END, w.attempts
      FROM written w JOIN unnest(f_items, f_bets) AS f (k, b) ON f.b = w.bet_no
     ORDER BY f.k, w.seq;

    -- Every other call alone, in arrival order.
    FOR k IN SELECT g FROM generate_series(1, n) AS g WHERE g <> ALL (f_items) ORDER BY g LOOP
        RETURN QUERY
            SELECT k, v.* FROM seamless_call(p_ops[k], p_providers[k], p_sessions[k],
                                             p_bet_ids[k], p_rounds[k], p_amounts[k], p_wins[k],
                                             p_standalone_wins[k], p_send_close[k], p_tx1[k],
                                             p_tx2[k], p_close_tx[k], p_owner, p_lease_s[k]) v;
    END LOOP;
END
$$;

-- The outcomes of many attempts, each `seamless_record`'s arguments as parallel arrays, with
-- each attempt's call legs (to lease the next of) flattened into p_next_items/p_next_legs.
CREATE FUNCTION seamless_record_batch(
    p_legs uuid[], p_owner uuid, p_outcomes text[], p_meanings text[], p_codes bigint[],
    p_partner_txs text[], p_balances numeric[], p_messages text[], p_started timestamptz[],
    p_elapsed_ms integer[], p_http_status integer[], p_bodies text[], p_errors text[],
    p_confirming boolean[], p_next_items integer[], p_next_legs uuid[], p_lease_s float8[]
) RETURNS SETOF seamless_item_view LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    n        int := cardinality(p_legs);
    f_items  int[];
    f_legs   uuid[];
    l_items  int[];
    l_legs   uuid[];
    v_bets   bigint[];
    k        int;
BEGIN
    IF n > 1000 OR cardinality(p_next_legs) > 3000 THEN
        RAISE EXCEPTION 'seamless_record_batch: % outcomes, more than 1000', n;
    END IF;
    IF cardinality(p_outcomes) <> n OR cardinality(p_meanings) <> n
       OR cardinality(p_codes) <> n OR cardinality(p_partner_txs) <> n
       OR cardinality(p_balances) <> n OR cardinality(p_messages) <> n
       OR cardinality(p_started) <> n OR cardinality(p_elapsed_ms) <> n
       OR cardinality(p_http_status) <> n OR cardinality(p_bodies) <> n
       OR cardinality(p_errors) <> n OR cardinality(p_confirming) <> n
       OR cardinality(p_lease_s) <> n
       OR cardinality(p_next_items) <> cardinality(p_next_legs) THEN
        RAISE EXCEPTION 'seamless_record_batch: the argument arrays differ in length';
    END IF;

    -- Bets first, in bet_no order; then every leg named, in id order.
    SELECT array_agg(DISTINCT l.bet_no) INTO v_bets
      FROM seamless_legs l WHERE l.id = ANY (p_legs || p_next_legs);
    PERFORM 1 FROM seamless_bets b WHERE b.bet_no = ANY (v_bets) ORDER BY b.bet_no FOR UPDATE;
    PERFORM 1 FROM seamless_legs l WHERE l.id = ANY (p_legs || p_next_legs)
     ORDER BY l.id FOR UPDATE;

    -- As in `seamless_record`: only the verdict that confirms an open bet's debit to its
    -- provider must reach the disk before the answer; if none here does, none waits.
    IF NOT EXISTS (SELECT 1 FROM unnest(p_legs, p_confirming) AS u (leg, confirming)
                     JOIN LATERAL (SELECT x.bet_no FROM seamless_legs x
                                    WHERE x.id = u.leg AND x.transaction_type = -1
                                   OFFSET 0) l ON true
                     JOIN LATERAL (SELECT 1 FROM seamless_bets x
                                    WHERE x.bet_no = l.bet_no AND x.state = 'open'
                                   OFFSET 0) b ON true
                    WHERE u.confirming) THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;

    -- Applied verdicts on legs this process holds, once each in the batch: the leg is final.
    -- (Every lookup here is by id, fenced with OFFSET 0, and every write by `id = ANY`: a
    -- state test in a join would lure the planner onto the partial index of unfinished legs,
    -- and a join planned while the table was small onto a scan of all of it.)
    SELECT array_agg(u.ord::int), array_agg(u.leg)
      INTO f_items, f_legs
      FROM unnest(p_legs, p_outcomes, p_meanings) WITH ORDINALITY AS u (leg, outcome, meaning, ord)
      JOIN LATERAL (SELECT * FROM seamless_legs x WHERE x.id = u.leg OFFSET 0) l ON true
     WHERE u.outcome = 'final' AND u.meaning = 'applied' AND l.state = 'sent'
       AND l.lease_owner = p_owner AND l.transaction_type IN (-1, 1, 4)
       AND NOT EXISTS (SELECT 1 FROM unnest(p_legs) WITH ORDINALITY AS d (leg, ord)
                        WHERE d.leg = u.leg AND d.ord <> u.ord);
    f_items := coalesce(f_items, '{}');
    f_legs := coalesce(f_legs, '{}');
    WITH done AS (
        UPDATE seamless_legs l
           SET state = 'ok', meaning = 'applied',
               casino_code = p_codes[f_items[array_position(f_legs, l.id)]],
               partner_transaction_id = p_partner_txs[f_items[array_position(f_legs, l.id)]],
               balance = p_balances[f_items[array_position(f_legs, l.id)]],
               message = p_messages[f_items[array_position(f_legs, l.id)]],
               final_at = now(), lease_owner = NULL, lease_until = NULL,
               next_attempt_at = NULL
         WHERE l.id = ANY (f_legs)
        RETURNING f_items[array_position(f_legs, l.id)] AS k, l.id, l.bet_no,
                  l.transaction_type, l.attempts
    ), audit AS (
        INSERT INTO seamless_exchanges (leg_id, attempt, started_at, elapsed_ms, http_status,
                                        body, error)
        SELECT d.id, d.attempts, p_started[d.k], p_elapsed_ms[d.k], p_http_status[d.k],
               left(p_bodies[d.k], 4000), NULL
          FROM done d
    )
    SELECT array_agg(d.bet_no) INTO v_bets
      FROM done d WHERE d.transaction_type = -1 AND p_confirming[d.k];
    UPDATE seamless_bets b SET confirmed = true
     WHERE b.bet_no = ANY (v_bets) AND NOT b.confirmed;

    -- Every other outcome alone, in arrival order.
    FOR k IN SELECT g FROM generate_series(1, n) AS g WHERE g <> ALL (f_items) ORDER BY g LOOP
        PERFORM seamless_record_step(p_legs[k], p_owner, p_outcomes[k], p_meanings[k],
                                     p_codes[k], p_partner_txs[k], p_balances[k],
                                     p_messages[k], p_started[k], p_elapsed_ms[k],
                                     p_http_status[k], p_bodies[k], p_errors[k],
                                     p_confirming[k]);
    END LOOP;

    -- For each attempt, the first unfinished leg of its call, leased to this caller when it
    -- may be sent now (`seamless_lease_locked`'s rule); a leg named by two attempts goes to
    -- the first.
    WITH first_open AS (
        SELECT DISTINCT ON (c.item) c.item, l.id, l.bet_no, l.seq, l.transaction_type,
               l.state, l.lease_until
          FROM unnest(p_next_items, p_next_legs) AS c (item, leg)
          JOIN LATERAL (SELECT * FROM seamless_legs x WHERE x.id = c.leg OFFSET 0) l ON true
         WHERE l.state IN ('pending', 'sent', 'unknown')
         ORDER BY c.item, l.seq
    ), sendable AS (
        -- `seamless_waits`, written out so that it runs as part of this query.
        SELECT DISTINCT ON (f.id) f.item, f.id
          FROM first_open f
          JOIN LATERAL (SELECT x.state FROM seamless_bets x
                         WHERE x.bet_no = f.bet_no OFFSET 0) b ON true
         WHERE (f.state <> 'sent' OR f.lease_until < now())
           AND (f.transaction_type <> -1 OR b.state IN ('open', 'settled'))
           AND NOT EXISTS (
               SELECT 1 FROM (SELECT * FROM seamless_legs x
                               WHERE x.bet_no = f.bet_no AND x.seq < f.seq OFFSET 0) e
                WHERE e.transaction_type <> 0 AND e.state NOT IN ('ok', 'refused')
                  AND NOT (f.transaction_type = 2 AND e.transaction_type = -1
                           AND NOT (e.state = 'sent' AND e.lease_until > now())))
         ORDER BY f.id, f.item
    )
    SELECT array_agg(s.item), array_agg(s.id) INTO l_items, l_legs FROM sendable s;
    l_items := coalesce(l_items, '{}');
    l_legs := coalesce(l_legs, '{}');
    UPDATE seamless_legs l
       SET state = 'sent', attempts = l.attempts + 1, lease_owner = p_owner,
           lease_until = now()
               + make_interval(secs => p_lease_s[l_items[array_position(l_legs, l.id)]]),
           last_sent_at = now()
     WHERE l.id = ANY (l_legs);

    RETURN QUERY
        SELECT c.item, NULL::text, l.bet_no, l.id, l.transaction_type, l.state, l.meaning,
               l.balance, l.partner_transaction_id, s.leg IS NOT NULL,
               CASE WHEN s.leg IS NOT NULL THEN l.data END, l.attempts
          FROM unnest(p_next_items, p_next_legs) AS c (item, leg)
          JOIN LATERAL (SELECT * FROM seamless_legs x WHERE x.id = c.leg OFFSET 0) l ON true
          LEFT JOIN unnest(l_items, l_legs) AS s (item, leg)
                 ON s.item = c.item AND s.leg = c.leg
         ORDER BY c.item, l.seq;
END
$$;
