-- Seamless mode: the provider's calls become legs (money movements sent to the casino).
--
-- `seamless_call` takes a provider call: it decides, under the bet's row lock, which legs the
-- call adds (contract section 3), writes them with their exact `data` strings, and leases the
-- first one that may be sent now. `seamless_record` writes an attempt's outcome (first final
-- verdict wins; a contradiction is recorded, never applied) and leases the next leg of the
-- call. `seamless_lease` leases for a caller that waits on a leg someone else is sending.
-- Each answers the call's legs as `seamless_leg_view` rows, in order.
--
-- Every hot-path function runs with `enable_seqscan = off`: PL/pgSQL caches a statement's
-- plan for the connection's life, and a plan made while `seamless_bets` or `seamless_legs`
-- was still small (a new installation, a new database) would scan the whole table at every
-- call once it has grown. Each of their lookups has an index; this keeps them on it.
--
-- Lock order: the bet row, then its legs. A leg is sendable when no earlier leg holds it up
-- (`seamless_waits`) and nobody holds its lease; a debit (-1) only while its bet is open or
-- settled (never after a compensation, a refusal or a refund). The retry job takes legs with SKIP LOCKED and waits on nothing.

CREATE TYPE seamless_leg_view AS (
    status            text,     -- the call's status (first row only; NULL after)
    bet_no            bigint,
    leg_id            uuid,
    transaction_type  smallint,
    state             text,
    meaning           text,
    balance           numeric,
    partner_tx        text,
    leased            boolean,  -- leased to the caller now: send `data`
    data              text,
    attempts          integer
);

-- The `data` of a make: compact JSON with the amount as a decimal string. STABLE, as
-- `to_json` is: PostgreSQL inlines a SQL function only when it is declared no stricter than
-- what it calls (an IMMUTABLE one would be run, parsed and planned, once per row).
CREATE FUNCTION seamless_make_data(p_bet_no bigint, p_type smallint, p_amount numeric,
                                   p_user text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT '{"BetId":' || p_bet_no::text || ',"TransactionType":' || p_type::text
           || ',"Amount":"' || trim_scale(p_amount)::text || '","PartnerUserId":'
           || to_json(p_user)::text || '}'
$$;

-- Adds a leg at the end of a bet. Credits and returns are due at once for the retry job;
-- a debit never is (it is sent only on a provider's call). PL/pgSQL rather than SQL, here and
-- in `seamless_waits`: PostgreSQL caches a PL/pgSQL function's plans, while a SQL function
-- that cannot be inlined is parsed and planned again on every call.
CREATE FUNCTION seamless_add_leg(p_bet_no bigint, p_id uuid, p_type smallint, p_amount numeric,
                                 p_user text, p_compensation boolean)
RETURNS void LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    v_seq smallint;
BEGIN
    SELECT coalesce(max(seq), 0) + 1 INTO v_seq FROM seamless_legs WHERE bet_no = p_bet_no;
    INSERT INTO seamless_legs (id, bet_no, seq, transaction_type, amount, data, compensation,
                               next_attempt_at)
    VALUES (p_id, p_bet_no, v_seq, p_type, p_amount,
            CASE WHEN p_type = 0 THEN '{"BetId":' || p_bet_no::text || ',"Closed":true}'
                 ELSE seamless_make_data(p_bet_no, p_type, p_amount, p_user) END,
            p_compensation, CASE WHEN p_type = -1 THEN NULL ELSE now() END);
END
$$;

-- Whether a leg must wait for an earlier leg of its bet: one that is not final, except a
-- `close` (no money) and, for a return (2), a debit not in flight (the return settles it:
-- the casino returns the stake if it took it, answers 404 if not).
CREATE FUNCTION seamless_waits(p_bet_no bigint, p_seq smallint, p_type smallint)
RETURNS boolean LANGUAGE plpgsql STABLE
SET enable_seqscan = off
AS $$
BEGIN
    -- The bet's legs by (bet_no, seq), filtered after: with the state test in the same
    -- query the planner prefers the partial index of unfinished legs, which under load holds
    -- every leg in flight and the dead entries of those just finished (OFFSET 0 keeps the
    -- filter out of the scan).
    RETURN EXISTS (
        SELECT 1 FROM (SELECT * FROM seamless_legs
                        WHERE bet_no = p_bet_no AND seq < p_seq OFFSET 0) e
         WHERE e.transaction_type <> 0 AND e.state NOT IN ('ok', 'refused')
           AND NOT (p_type = 2 AND e.transaction_type = -1
                    AND NOT (e.state = 'sent' AND e.lease_until > now())));
END
$$;

-- Leases the first leg of `p_legs` that is not final, if it may be sent now, and answers
-- the legs. The caller holds the bet's row lock.
CREATE FUNCTION seamless_lease_locked(p_status text, p_bet_no bigint, p_legs uuid[],
                                      p_owner uuid, p_lease_s float8)
RETURNS SETOF seamless_leg_view LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    l        seamless_legs%ROWTYPE;
    v_state  text;
    v_leased uuid;
BEGIN
    SELECT state INTO v_state FROM seamless_bets WHERE bet_no = p_bet_no;
    -- The call's legs (at most three) locked by id, then the state filtered (see
    -- `seamless_waits` for why not in one query).
    PERFORM 1 FROM seamless_legs WHERE id = ANY (p_legs) FOR UPDATE;
    SELECT * INTO l FROM (SELECT * FROM seamless_legs WHERE id = ANY (p_legs) OFFSET 0) x
     WHERE x.state IN ('pending', 'sent', 'unknown')
     ORDER BY x.seq LIMIT 1;
    IF p_owner IS NOT NULL AND FOUND AND (l.state <> 'sent' OR l.lease_until < now()) THEN
        IF NOT seamless_waits(l.bet_no, l.seq, l.transaction_type)
           AND (l.transaction_type <> -1 OR v_state IN ('open', 'settled')) THEN
            UPDATE seamless_legs
               SET state = 'sent', attempts = attempts + 1, lease_owner = p_owner,
                   lease_until = now() + make_interval(secs => p_lease_s),
                   last_sent_at = now()
             WHERE id = l.id;
            v_leased := l.id;
        END IF;
    END IF;
    RETURN QUERY
        SELECT CASE WHEN row_number() OVER (ORDER BY x.seq) = 1 THEN p_status END,
               p_bet_no, x.id, x.transaction_type, x.state, x.meaning, x.balance,
               x.partner_transaction_id, coalesce(x.id = v_leased, false),
               CASE WHEN x.id = v_leased THEN x.data END, x.attempts
          FROM seamless_legs x WHERE x.id = ANY (p_legs) ORDER BY x.seq;
END
$$;

-- A provider call on a seamless session. p_op: pay_in | pay_in_out | pay_out | refund.
-- p_tx1/p_tx2: the leg ids this call adds if it adds any (pay_in: -1; pay_in_out: -1, 1;
-- pay_out: 1 or 4; refund: 2, and -2 for a settled bet). Statuses:
--   new        legs added: drive them; answer 1 once final
--   repeat     the same call again: drive what is not final; 104 if all was final before
--   tombstone  a Refund with nothing to send (unknown bet, or its debit refused): 1
--   tombstone_repeat  the same Refund again: 104
--   conflict, bet_closed, bet_not_found, session_not_found, blocked
CREATE FUNCTION seamless_call(
    p_op text, p_provider text, p_session uuid, p_bet_id text, p_round text,
    p_amount numeric, p_win numeric, p_standalone_wins boolean, p_send_close boolean,
    p_tx1 uuid, p_tx2 uuid, p_close_tx uuid, p_owner uuid, p_lease_s float8
) RETURNS SETOF seamless_leg_view LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    c_player   uuid;
    c_user     text;
    c_operator text;
    c_currency text;
    c_live     boolean;
    c_blocked  boolean;
    b          seamless_bets%ROWTYPE;
    v_kind     text;
    v_fp       text;
    v_legs     uuid[];
    v_status   text;
BEGIN
    SELECT s.player_id, p.external_id, p.operator_id, w.currency,
           s.status = 'open' AND s.expires_at > now(),
           p.status <> 'active' OR o.status <> 'active'
      INTO c_player, c_user, c_operator, c_currency, c_live, c_blocked
      FROM sessions s JOIN players p ON p.id = s.player_id
      JOIN wallets w ON w.id = s.wallet_id
      JOIN counterparties o ON o.id = p.operator_id
     WHERE s.id = p_session AND s.provider_id = p_provider;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'session_not_found'::text, NULL::bigint, NULL::uuid, NULL::smallint,
            NULL::text, NULL::text, NULL::numeric, NULL::text, false, NULL::text, NULL::integer;
        RETURN;
    END IF;

    v_kind := CASE p_op WHEN 'pay_in' THEN 'pay_in' WHEN 'pay_in_out' THEN 'pay_in_out'
                        WHEN 'pay_out' THEN 'pay_out' ELSE 'refund' END;
    SELECT * INTO b FROM seamless_bets
     WHERE provider_id = p_provider AND bet_id = p_bet_id FOR UPDATE;

    IF p_op IN ('pay_in', 'pay_in_out') THEN
        v_fp := bet_fingerprint(v_kind, c_player, p_round, p_amount, p_win);
        IF NOT FOUND THEN
            IF NOT c_live OR c_blocked THEN
                v_status := CASE WHEN NOT c_live THEN 'session_not_found' ELSE 'blocked' END;
                RETURN QUERY SELECT v_status, NULL::bigint, NULL::uuid, NULL::smallint,
                    NULL::text, NULL::text, NULL::numeric, NULL::text, false, NULL::text,
                    NULL::integer;
                RETURN;
            END IF;
            INSERT INTO seamless_bets (provider_id, bet_id, session_id, operator_id, player_id,
                                       currency, round_id, kind, fingerprint, stake, win, state)
            VALUES (p_provider, p_bet_id, p_session, c_operator, c_player, c_currency, p_round,
                    v_kind, v_fp, p_amount, p_win, 'open')
            ON CONFLICT ON CONSTRAINT seamless_bets_provider_bet_unique DO NOTHING
            RETURNING * INTO b;
            IF NOT FOUND THEN
                -- Another call made it meanwhile: judge this one against it.
                SELECT * INTO b FROM seamless_bets
                 WHERE provider_id = p_provider AND bet_id = p_bet_id FOR UPDATE;
            ELSE
                PERFORM seamless_add_leg(b.bet_no, p_tx1, -1::smallint, p_amount, c_user, false);
                v_legs := ARRAY[p_tx1];
                IF p_op = 'pay_in_out' THEN
                    UPDATE seamless_bets SET state = 'settled' WHERE bet_no = b.bet_no;
                    PERFORM seamless_add_leg(b.bet_no, p_tx2, 1::smallint, p_win, c_user, false);
                    v_legs := v_legs || p_tx2;
                END IF;
                RETURN QUERY SELECT * FROM seamless_lease_locked('new', b.bet_no, v_legs,
                                                                 p_owner, p_lease_s);
                RETURN;
            END IF;
        END IF;
        UPDATE seamless_bets SET last_call_at = now() WHERE bet_no = b.bet_no;
        IF b.player_id <> c_player THEN
            v_status := 'conflict';
        ELSIF b.state IN ('refunded', 'compensated', 'tombstone') THEN
            v_status := 'bet_closed';
        ELSIF b.fingerprint <> v_fp THEN
            v_status := 'conflict';
        ELSE
            SELECT array_agg(id ORDER BY seq) INTO v_legs FROM seamless_legs
             WHERE bet_no = b.bet_no AND compensation = false
               AND transaction_type = ANY (CASE WHEN p_op = 'pay_in' THEN ARRAY[-1]
                                                ELSE ARRAY[-1, 1] END::smallint[]);
            RETURN QUERY SELECT * FROM seamless_lease_locked('repeat', b.bet_no, v_legs,
                                                             p_owner, p_lease_s);
            RETURN;
        END IF;

    ELSIF p_op = 'pay_out' THEN
        IF NOT FOUND THEN
            IF NOT p_standalone_wins THEN
                v_status := 'bet_not_found';
            ELSE
                INSERT INTO seamless_bets (provider_id, bet_id, session_id, operator_id,
                                           player_id, currency, round_id, kind, fingerprint,
                                           stake, win, state)
                VALUES (p_provider, p_bet_id, p_session, c_operator, c_player, c_currency,
                        p_round, 'pay_out',
                        bet_fingerprint('pay_out', c_player, p_round, 0, p_win), 0, p_win,
                        'settled')
                ON CONFLICT ON CONSTRAINT seamless_bets_provider_bet_unique DO NOTHING
                RETURNING * INTO b;
                IF NOT FOUND THEN
                    -- Another call made the bet meanwhile: this one is judged against it.
                    RETURN QUERY SELECT * FROM seamless_call(
                        p_op, p_provider, p_session, p_bet_id, p_round, p_amount, p_win,
                        p_standalone_wins, p_send_close, p_tx1, p_tx2, p_close_tx, p_owner,
                        p_lease_s);
                    RETURN;
                ELSE
                    PERFORM seamless_add_leg(b.bet_no, p_tx1, 4::smallint, p_win, c_user, false);
                    RETURN QUERY SELECT * FROM seamless_lease_locked('new', b.bet_no,
                                                                     ARRAY[p_tx1], p_owner,
                                                                     p_lease_s);
                    RETURN;
                END IF;
            END IF;
        ELSE
            UPDATE seamless_bets SET last_call_at = now() WHERE bet_no = b.bet_no;
            IF b.player_id <> c_player THEN
                v_status := 'conflict';
            ELSIF b.state = 'open' THEN
                UPDATE seamless_bets SET state = 'settled', win = p_win WHERE bet_no = b.bet_no;
                PERFORM seamless_add_leg(b.bet_no, p_tx1, 1::smallint, p_win, c_user, false);
                IF p_send_close THEN
                    PERFORM seamless_add_leg(b.bet_no, p_close_tx, 0::smallint, 0, c_user, false);
                END IF;
                RETURN QUERY SELECT * FROM seamless_lease_locked('new', b.bet_no, ARRAY[p_tx1],
                                                                 p_owner, p_lease_s);
                RETURN;
            ELSIF b.state = 'settled' AND trim_scale(b.win) = trim_scale(p_win) THEN
                SELECT array_agg(id) INTO v_legs FROM seamless_legs
                 WHERE bet_no = b.bet_no AND transaction_type IN (1, 4);
                RETURN QUERY SELECT * FROM seamless_lease_locked('repeat', b.bet_no, v_legs,
                                                                 p_owner, p_lease_s);
                RETURN;
            ELSIF b.state = 'settled' THEN
                v_status := 'conflict';
            ELSIF b.state = 'refused' THEN
                v_status := 'bet_not_found';
            ELSE
                v_status := 'bet_closed';
            END IF;
        END IF;

    ELSE -- refund
        IF NOT FOUND THEN
            INSERT INTO seamless_bets (provider_id, bet_id, session_id, operator_id, player_id,
                                       currency, kind, fingerprint, stake, state, refund_tx)
            VALUES (p_provider, p_bet_id, p_session, c_operator, c_player, c_currency, 'refund',
                    bet_fingerprint('refund', c_player, NULL, 0, NULL), 0, 'tombstone', p_tx1)
            ON CONFLICT ON CONSTRAINT seamless_bets_provider_bet_unique DO NOTHING
            RETURNING * INTO b;
            IF NOT FOUND THEN
                -- The bet was made meanwhile (a PayIn racing this Refund): refund it.
                RETURN QUERY SELECT * FROM seamless_call(
                    p_op, p_provider, p_session, p_bet_id, p_round, p_amount, p_win,
                    p_standalone_wins, p_send_close, p_tx1, p_tx2, p_close_tx, p_owner,
                    p_lease_s);
                RETURN;
            END IF;
            v_status := 'tombstone';
        ELSE
            UPDATE seamless_bets SET last_call_at = now() WHERE bet_no = b.bet_no;
            IF b.player_id <> c_player THEN
                v_status := 'conflict';
            ELSIF b.state = 'open' THEN
                UPDATE seamless_bets SET state = 'refunded' WHERE bet_no = b.bet_no;
                PERFORM seamless_add_leg(b.bet_no, p_tx1, 2::smallint, b.stake, c_user, false);
                RETURN QUERY SELECT * FROM seamless_lease_locked('new', b.bet_no, ARRAY[p_tx1],
                                                                 p_owner, p_lease_s);
                RETURN;
            ELSIF b.state = 'settled' AND EXISTS (SELECT 1 FROM seamless_legs
                                                   WHERE bet_no = b.bet_no
                                                     AND transaction_type = -2) THEN
                -- A refund the casino refused (the win was spent): the same answer again.
                SELECT array_agg(id ORDER BY seq) INTO v_legs FROM seamless_legs
                 WHERE bet_no = b.bet_no AND transaction_type IN (-2, 2);
                RETURN QUERY SELECT * FROM seamless_lease_locked('repeat', b.bet_no, v_legs,
                                                                 p_owner, p_lease_s);
                RETURN;
            ELSIF b.state = 'settled' THEN
                UPDATE seamless_bets SET state = 'refunded' WHERE bet_no = b.bet_no;
                v_legs := ARRAY[]::uuid[];
                IF b.win > 0 THEN
                    PERFORM seamless_add_leg(b.bet_no, p_tx2, -2::smallint, b.win, c_user,
                                             false);
                    v_legs := v_legs || p_tx2;
                END IF;
                IF b.stake > 0 THEN
                    PERFORM seamless_add_leg(b.bet_no, p_tx1, 2::smallint, b.stake, c_user,
                                             false);
                    v_legs := v_legs || p_tx1;
                END IF;
                IF cardinality(v_legs) = 0 THEN
                    -- Nothing was staked or won: refunded with nothing to send.
                    UPDATE seamless_bets SET refund_tx = p_tx1 WHERE bet_no = b.bet_no;
                    v_status := 'tombstone';
                ELSE
                    RETURN QUERY SELECT * FROM seamless_lease_locked('new', b.bet_no, v_legs,
                                                                     p_owner, p_lease_s);
                    RETURN;
                END IF;
            ELSIF b.state = 'compensated' THEN
                -- croupier already returned the stake: the provider's Refund takes that
                -- return as its own.
                UPDATE seamless_bets SET state = 'refunded' WHERE bet_no = b.bet_no;
                SELECT array_agg(id) INTO v_legs FROM seamless_legs
                 WHERE bet_no = b.bet_no AND transaction_type = 2;
                RETURN QUERY SELECT * FROM seamless_lease_locked('new', b.bet_no, v_legs,
                                                                 p_owner, p_lease_s);
                RETURN;
            ELSIF b.state = 'refunded' AND b.refund_tx IS NOT NULL THEN
                v_status := 'tombstone_repeat';
                p_tx1 := b.refund_tx;
            ELSIF b.state = 'refunded' THEN
                SELECT array_agg(id ORDER BY seq) INTO v_legs FROM seamless_legs
                 WHERE bet_no = b.bet_no AND transaction_type IN (-2, 2);
                RETURN QUERY SELECT * FROM seamless_lease_locked('repeat', b.bet_no, v_legs,
                                                                 p_owner, p_lease_s);
                RETURN;
            ELSIF b.state = 'refused' THEN
                UPDATE seamless_bets SET state = 'tombstone', refund_tx = p_tx1
                 WHERE bet_no = b.bet_no;
                v_status := 'tombstone';
                p_tx1 := p_tx1;
            ELSE -- tombstone
                v_status := 'tombstone_repeat';
                p_tx1 := b.refund_tx;
            END IF;
        END IF;
        IF v_status IN ('tombstone', 'tombstone_repeat') THEN
            RETURN QUERY SELECT v_status, b.bet_no, p_tx1, NULL::smallint, NULL::text,
                NULL::text, NULL::numeric, NULL::text, false, NULL::text, NULL::integer;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT v_status, b.bet_no, NULL::uuid, NULL::smallint, NULL::text, NULL::text,
        NULL::numeric, NULL::text, false, NULL::text, NULL::integer;
END
$$;

-- Leases the next sendable leg of `p_legs` (the caller waits on legs someone else sends);
-- with no owner, only answers the legs.
CREATE FUNCTION seamless_lease(p_legs uuid[], p_owner uuid, p_lease_s float8)
RETURNS SETOF seamless_leg_view LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    v_bet bigint;
BEGIN
    SELECT bet_no INTO v_bet FROM seamless_legs WHERE id = p_legs[1];
    IF p_owner IS NOT NULL THEN
        PERFORM 1 FROM seamless_bets WHERE bet_no = v_bet FOR UPDATE;
    END IF;
    RETURN QUERY SELECT * FROM seamless_lease_locked(NULL, v_bet, p_legs, p_owner, p_lease_s);
END
$$;

-- The delay before a credit's next attempt: about 1 s, 2 s, 5 s, 10 s, 30 s, then a minute.
CREATE FUNCTION seamless_backoff(p_attempts integer)
RETURNS interval LANGUAGE sql IMMUTABLE AS $$
    SELECT make_interval(secs => CASE p_attempts WHEN 1 THEN 1 WHEN 2 THEN 2 WHEN 3 THEN 5
                                                 WHEN 4 THEN 10 WHEN 5 THEN 30 ELSE 60 END)
$$;

-- Applies a final verdict to a leg that is not final yet, with what follows from it:
-- a refused debit or win reversal voids the legs after it (never sent); a return's verdict
-- tells whether the debit it returns had been applied (200: yes; 404: never).
CREATE FUNCTION seamless_finalise(p_leg uuid, p_meaning text, p_code bigint, p_partner_tx text,
                                  p_balance numeric, p_message text, p_resolved_by text,
                                  p_note text)
RETURNS void LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    l        seamless_legs%ROWTYPE;
    v_state  text;
BEGIN
    SELECT * INTO l FROM seamless_legs WHERE id = p_leg FOR UPDATE;
    v_state := CASE WHEN p_meaning = 'applied' THEN 'ok'
                    WHEN p_meaning = 'not_found' AND l.transaction_type IN (-2, 0, 2) THEN 'ok'
                    ELSE 'refused' END;
    UPDATE seamless_legs
       SET state = v_state, meaning = p_meaning, casino_code = p_code,
           partner_transaction_id = p_partner_tx, balance = p_balance, message = p_message,
           final_at = now(), lease_owner = NULL, lease_until = NULL, next_attempt_at = NULL,
           resolved_by = p_resolved_by, resolution_note = p_note
     WHERE id = p_leg;
    IF v_state = 'refused' AND l.transaction_type IN (-1, -2) THEN
        UPDATE seamless_legs
           SET state = 'refused', meaning = 'void', final_at = now(), next_attempt_at = NULL
         WHERE bet_no = l.bet_no AND seq > l.seq AND state IN ('pending', 'unknown')
           AND attempts = 0;
        IF l.transaction_type = -1 THEN
            UPDATE seamless_bets SET state = 'refused'
             WHERE bet_no = l.bet_no AND state IN ('open', 'settled');
        ELSIF p_meaning <> 'void' THEN
            -- The casino kept the win (spent): the refund did not happen, the bet stays
            -- settled (a PayOut repeat is 104; a Refund repeat hears this refusal again).
            UPDATE seamless_bets SET state = 'settled'
             WHERE bet_no = l.bet_no AND state = 'refunded';
        END IF;
    END IF;
    IF l.transaction_type = 2 AND v_state = 'ok' THEN
        UPDATE seamless_legs
           SET state = CASE WHEN p_meaning = 'applied' THEN 'ok' ELSE 'refused' END,
               meaning = CASE WHEN p_meaning = 'applied' THEN 'applied' ELSE 'not_found' END,
               final_at = now(), lease_owner = NULL, lease_until = NULL,
               resolved_by = 'return',
               resolution_note = 'told by the casino''s answer to the return of its stake'
         WHERE bet_no = l.bet_no AND transaction_type = -1
           AND state IN ('pending', 'sent', 'unknown', 'stuck');
    END IF;
END
$$;

-- Records an attempt on a leg. p_outcome: final (p_meaning says which), accepted (202: the
-- verdict follows by accept), or unknown. A final verdict on a final leg that contradicts it
-- is a discrepancy. p_confirming: the caller answers the provider now (a debit made final
-- here is confirmed). Takes the bet's lock, then the leg's (held already by a batch).
CREATE FUNCTION seamless_record_step(
    p_leg uuid, p_owner uuid, p_outcome text, p_meaning text, p_code bigint, p_partner_tx text,
    p_balance numeric, p_message text, p_started timestamptz, p_elapsed_ms integer,
    p_http_status integer, p_body text, p_error text, p_confirming boolean
) RETURNS void LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    l  seamless_legs%ROWTYPE;
BEGIN
    SELECT * INTO l FROM seamless_legs WHERE id = p_leg;
    PERFORM 1 FROM seamless_bets WHERE bet_no = l.bet_no FOR UPDATE;
    SELECT * INTO l FROM seamless_legs WHERE id = p_leg FOR UPDATE;
    INSERT INTO seamless_exchanges (leg_id, attempt, started_at, elapsed_ms, http_status, body,
                                    error)
    VALUES (p_leg, l.attempts, p_started, p_elapsed_ms, p_http_status, left(p_body, 4000),
            left(p_error, 1000));
    IF l.state IN ('ok', 'refused') THEN
        IF p_outcome = 'final'
           AND (l.state = 'ok') <> (p_meaning = 'applied'
                                    OR (p_meaning = 'not_found'
                                        AND l.transaction_type IN (-2, 0, 2))) THEN
            INSERT INTO seamless_discrepancies (leg_id, bet_no, transaction_type, source,
                                                reported, recorded)
            VALUES (p_leg, l.bet_no, l.transaction_type, 'answer',
                    jsonb_build_object('ErrorCode', p_code, 'meaning', p_meaning,
                                       'PartnerTransactionId', p_partner_tx),
                    l.state || ':' || l.meaning);
        END IF;
    ELSIF p_outcome = 'final' THEN
        PERFORM seamless_finalise(p_leg, p_meaning, p_code, p_partner_tx, p_balance, p_message,
                                  NULL, NULL);
        IF p_confirming AND l.transaction_type = -1 AND p_meaning = 'applied' THEN
            UPDATE seamless_bets SET confirmed = true WHERE bet_no = l.bet_no;
        END IF;
    ELSIF l.state = 'sent' AND l.lease_owner = p_owner THEN
        UPDATE seamless_legs
           SET state = 'unknown', lease_owner = NULL, lease_until = NULL, casino_code = p_code,
               message = CASE WHEN p_outcome = 'accepted' THEN 'accepted' ELSE p_message END,
               next_attempt_at = CASE
                   WHEN transaction_type = -1 THEN NULL
                   WHEN p_outcome = 'accepted' THEN now() + interval '30 seconds'
                   ELSE now() + seamless_backoff(attempts) END
         WHERE id = p_leg;
    END IF;
END
$$;

-- Records an attempt on a leg (`seamless_record_step`) and leases the next sendable leg of
-- `p_legs` (may be empty).
CREATE FUNCTION seamless_record(
    p_leg uuid, p_owner uuid, p_outcome text, p_meaning text, p_code bigint, p_partner_tx text,
    p_balance numeric, p_message text, p_started timestamptz, p_elapsed_ms integer,
    p_http_status integer, p_body text, p_error text, p_confirming boolean,
    p_legs uuid[], p_lease_s float8
) RETURNS SETOF seamless_leg_view LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    l            seamless_legs%ROWTYPE;
    v_bet_state  text;
BEGIN
    SELECT * INTO l FROM seamless_legs WHERE id = p_leg;
    SELECT state INTO v_bet_state FROM seamless_bets WHERE bet_no = l.bet_no FOR UPDATE;
    -- What this writes can be told again if a crash loses it (the leg stays sent: a credit is
    -- re-sent and answered its original result, a debit is settled by payments/info), except
    -- the verdict that confirms an open bet's debit to its provider (a lost one would let the
    -- abandoned-debit rule return a stake the provider was told is taken): only that one
    -- waits for the disk.
    IF NOT (p_confirming AND l.transaction_type = -1 AND v_bet_state = 'open') THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM seamless_record_step(p_leg, p_owner, p_outcome, p_meaning, p_code, p_partner_tx,
                                 p_balance, p_message, p_started, p_elapsed_ms, p_http_status,
                                 p_body, p_error, p_confirming);
    IF cardinality(p_legs) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM seamless_lease_locked(NULL, l.bet_no, p_legs, p_owner, p_lease_s);
END
$$;

-- Marks the debit of a bet the provider was answered for (1 or 104).
CREATE FUNCTION seamless_confirm(p_bet_no bigint)
RETURNS void LANGUAGE sql AS $$
    UPDATE seamless_bets SET confirmed = true WHERE bet_no = p_bet_no AND NOT confirmed
$$;

-- The casino's `payments/accept`: a final verdict (p_meaning not NULL) on the leg of
-- (BetId, TransactionType). Returns: recorded, duplicate (the same verdict again),
-- discrepancy (it contradicts the recorded one, or names no leg croupier sent), pending (a
-- 202 again: nothing to record).
CREATE FUNCTION seamless_accept(p_operator text, p_bet_no bigint, p_type smallint,
                                p_meaning text, p_code bigint, p_partner_tx text,
                                p_amount numeric, p_balance numeric, p_message text,
                                p_reported jsonb)
RETURNS text LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    l  seamless_legs%ROWTYPE;
    v_ok boolean;
BEGIN
    PERFORM 1 FROM seamless_bets WHERE bet_no = p_bet_no AND operator_id = p_operator FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO seamless_discrepancies (bet_no, transaction_type, source, reported)
        VALUES (p_bet_no, p_type, 'accept', p_reported);
        RETURN 'discrepancy';
    END IF;
    SELECT * INTO l FROM seamless_legs
     WHERE bet_no = p_bet_no AND transaction_type = p_type FOR UPDATE;
    IF NOT FOUND OR l.attempts = 0
       OR (p_amount IS NOT NULL AND p_amount <> l.amount) THEN
        INSERT INTO seamless_discrepancies (leg_id, bet_no, transaction_type, source, reported,
                                            recorded)
        VALUES (l.id, p_bet_no, p_type, 'accept', p_reported,
                CASE WHEN l.id IS NULL THEN NULL ELSE l.state || ':' || coalesce(l.meaning, '') END);
        RETURN 'discrepancy';
    END IF;
    IF p_meaning IS NULL OR p_meaning IN ('accepted', 'unknown') THEN
        RETURN 'pending';
    END IF;
    v_ok := p_meaning = 'applied' OR (p_meaning = 'not_found' AND l.transaction_type IN (-2, 0, 2));
    IF l.state IN ('ok', 'refused') THEN
        IF (l.state = 'ok') = v_ok THEN
            RETURN 'duplicate';
        END IF;
        INSERT INTO seamless_discrepancies (leg_id, bet_no, transaction_type, source, reported,
                                            recorded)
        VALUES (l.id, p_bet_no, p_type, 'accept', p_reported, l.state || ':' || l.meaning);
        RETURN 'discrepancy';
    END IF;
    PERFORM seamless_finalise(l.id, p_meaning, p_code, p_partner_tx, p_balance, p_message,
                              NULL, NULL);
    RETURN 'recorded';
END
$$;

-- The retry job's legs: credits, returns and closes that are due, sendable, and not leased
-- (or whose lease ran out: a sender died), leased to `p_owner`.
CREATE FUNCTION seamless_due(p_owner uuid, p_limit integer)
RETURNS TABLE (leg_id uuid, operator_id text, transaction_type smallint, data text)
LANGUAGE sql AS $$
    WITH due AS (
        SELECT l.id FROM seamless_legs l
         WHERE (l.state IN ('pending', 'unknown') OR (l.state = 'sent' AND l.lease_until < now()))
           AND l.transaction_type <> -1 AND l.next_attempt_at <= now()
           AND (l.lease_until IS NULL OR l.lease_until < now())
           AND NOT seamless_waits(l.bet_no, l.seq, l.transaction_type)
         ORDER BY l.next_attempt_at
         LIMIT p_limit
         FOR UPDATE OF l SKIP LOCKED)
    UPDATE seamless_legs l
       SET state = 'sent', attempts = l.attempts + 1, lease_owner = p_owner,
           lease_until = now() + make_interval(secs => o.attempt_timeout_ms / 1000.0 + 2),
           last_sent_at = now()
      FROM due, seamless_bets b, seamless_operators o
     WHERE l.id = due.id AND b.bet_no = l.bet_no AND o.operator_id = b.operator_id
    RETURNING l.id, b.operator_id, l.transaction_type, l.data
$$;

-- Credits out of their retry horizon: stuck, for a person to resolve. Returns how many.
CREATE FUNCTION seamless_mark_stuck()
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    UPDATE seamless_legs l
       SET state = 'stuck', lease_owner = NULL, lease_until = NULL, next_attempt_at = NULL
      FROM seamless_bets b, seamless_operators o
     WHERE b.bet_no = l.bet_no AND o.operator_id = b.operator_id
       AND (l.state IN ('pending', 'unknown') OR (l.state = 'sent' AND l.lease_until < now()))
       AND l.transaction_type <> -1
       AND l.created_at < now() - make_interval(secs => o.retry_horizon_s)
       AND (l.lease_until IS NULL OR l.lease_until < now());
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Debits the provider abandoned: an open bet whose debit no provider was ever answered for,
-- with no provider call for `abandon_after_s` and no attempt in flight. A debit never sent
-- was never applied: it is refused (void). One that was sent is returned with a
-- compensating 2, and its bet closes (a late PayIn gets 6). Returns how many bets.
CREATE FUNCTION seamless_compensate(p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    b  record;
    d  seamless_legs%ROWTYPE;
    n  integer := 0;
BEGIN
    FOR b IN SELECT sb.bet_no, sb.stake, p.external_id
               FROM seamless_bets sb
               JOIN seamless_operators o ON o.operator_id = sb.operator_id
               JOIN players p ON p.id = sb.player_id
              WHERE sb.state = 'open' AND NOT sb.confirmed
                AND sb.last_call_at < now() - make_interval(secs => o.abandon_after_s)
              ORDER BY sb.last_call_at
              LIMIT p_limit
                FOR UPDATE OF sb SKIP LOCKED LOOP
        SELECT * INTO d FROM seamless_legs
         WHERE bet_no = b.bet_no AND transaction_type = -1 FOR UPDATE;
        IF d.state = 'sent' AND d.lease_until > now() THEN
            CONTINUE;
        END IF;
        IF d.attempts = 0 THEN
            PERFORM seamless_finalise(d.id, 'not_found', NULL, NULL, NULL, 'never sent',
                                      'croupier', 'abandoned before it was sent');
        ELSE
            UPDATE seamless_bets SET state = 'compensated' WHERE bet_no = b.bet_no;
            PERFORM seamless_add_leg(b.bet_no, gen_random_uuid(), 2::smallint, b.stake,
                                     b.external_id, true);
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Unknown debits whose accept window (30 s after their last attempt) has passed, to ask
-- `payments/info` about; each is asked at most every 30 s.
CREATE FUNCTION seamless_info_due(p_limit integer)
RETURNS TABLE (bet_no bigint, operator_id text)
LANGUAGE sql AS $$
    WITH due AS (
        SELECT l.id FROM seamless_legs l
         WHERE l.transaction_type = -1 AND l.attempts > 0
           AND (l.state = 'unknown' OR (l.state = 'sent' AND l.lease_until < now()))
           AND l.last_sent_at < now() - interval '30 seconds'
           AND (l.info_asked_at IS NULL OR l.info_asked_at < now() - interval '30 seconds')
         LIMIT p_limit
         FOR UPDATE OF l SKIP LOCKED)
    UPDATE seamless_legs l SET info_asked_at = now()
      FROM due, seamless_bets b
     WHERE l.id = due.id AND b.bet_no = l.bet_no
    RETURNING l.bet_no, b.operator_id
$$;

-- What `payments/info` told about a debit: listed (applied) or not (never applied, since its
-- JWTs have long expired). A leg final meanwhile is compared, not changed.
CREATE FUNCTION seamless_info_verdict(p_bet_no bigint, p_type smallint, p_listed boolean,
                                      p_partner_tx text, p_reported jsonb)
RETURNS text LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    l  seamless_legs%ROWTYPE;
BEGIN
    PERFORM 1 FROM seamless_bets WHERE bet_no = p_bet_no FOR UPDATE;
    SELECT * INTO l FROM seamless_legs
     WHERE bet_no = p_bet_no AND transaction_type = p_type FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'none';
    END IF;
    IF l.state = 'sent' AND l.lease_until > now() THEN
        RETURN 'in_flight';
    END IF;
    IF l.state IN ('ok', 'refused') THEN
        IF (l.state = 'ok') <> p_listed THEN
            INSERT INTO seamless_discrepancies (leg_id, bet_no, transaction_type, source,
                                                reported, recorded)
            VALUES (l.id, p_bet_no, p_type, 'info', p_reported, l.state || ':' || l.meaning);
            RETURN 'discrepancy';
        END IF;
        RETURN 'duplicate';
    END IF;
    PERFORM seamless_finalise(l.id, CASE WHEN p_listed THEN 'applied' ELSE 'not_found' END,
                              NULL, p_partner_tx, NULL, NULL, 'info',
                              'told by payments/info');
    RETURN 'recorded';
END
$$;
