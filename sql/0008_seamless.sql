-- 0008: seamless mode. A seamless operator keeps its players' money in its own wallet; croupier
-- forwards every movement to it (see the README's "Seamless mode" section).

-- An operator is seamless when it has a row here. The settings default to the contract's
-- numbers; `error_codes` maps a casino's own ErrorCodes onto croupier's meanings where they
-- differ from the defaults (a JSON object of code -> meaning).
CREATE TABLE seamless_operators (
    operator_id         text        NOT NULL,
    wallet_url          text        NOT NULL,
    attempt_timeout_ms  integer     NOT NULL DEFAULT 3000,
    provider_deadline_ms integer    NOT NULL DEFAULT 8000,
    retry_horizon_s     integer     NOT NULL DEFAULT 86400,
    abandon_after_s     integer     NOT NULL DEFAULT 60,
    send_close          boolean     NOT NULL DEFAULT true,
    make_list           boolean     NOT NULL DEFAULT false,
    error_codes         jsonb       NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT seamless_operators_pkey PRIMARY KEY (operator_id),
    CONSTRAINT seamless_operators_operator_fkey FOREIGN KEY (operator_id)
        REFERENCES counterparties (id),
    CONSTRAINT seamless_operators_wallet_url_shape
        CHECK (wallet_url ~ '^https?://[^\s]+$' AND length(wallet_url) <= 2000),
    CONSTRAINT seamless_operators_attempt_timeout_range
        CHECK (attempt_timeout_ms BETWEEN 100 AND 60000),
    CONSTRAINT seamless_operators_deadline_range
        CHECK (provider_deadline_ms BETWEEN attempt_timeout_ms AND 120000),
    CONSTRAINT seamless_operators_retry_horizon_range
        CHECK (retry_horizon_s BETWEEN 60 AND 30 * 86400),
    CONSTRAINT seamless_operators_abandon_range CHECK (abandon_after_s BETWEEN 10 AND 3600),
    CONSTRAINT seamless_operators_error_codes_object CHECK (jsonb_typeof(error_codes) = 'object')
);

-- The public halves of croupier's RS256 signing keys (the private halves live in the data
-- folder, mode 0600). A key signs from `signs_from` until the next key's `signs_from`; the
-- JWKS publishes it from its creation until a day after that.
CREATE TABLE signing_keys (
    kid         text        NOT NULL,
    n           text        NOT NULL,
    e           text        NOT NULL,
    x5t         text        NOT NULL,
    signs_from  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT signing_keys_pkey PRIMARY KEY (kid),
    CONSTRAINT signing_keys_kid_shape CHECK (kid ~ '^[0-9A-F]{40}$'),
    CONSTRAINT signing_keys_signs_from_unique UNIQUE (signs_from)
);

-- Bearer tokens a casino obtained from `auth/token`, by their SHA-256: the token itself is
-- never stored.
CREATE TABLE casino_tokens (
    token_sha256 bytea       NOT NULL,
    operator_id  text        NOT NULL,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT casino_tokens_pkey PRIMARY KEY (token_sha256),
    CONSTRAINT casino_tokens_operator_fkey FOREIGN KEY (operator_id)
        REFERENCES counterparties (id),
    CONSTRAINT casino_tokens_hash_length CHECK (length(token_sha256) = 32)
);
CREATE INDEX casino_tokens_operator_expiry ON casino_tokens (operator_id, expires_at);

-- A provider bet on a seamless session. `bet_no` is the numeric `BetId` the casino sees: a
-- sequence, so below 2^53 and the same on every retry. `state` is what the provider has done
-- to it: open (PayIn seen), settled (PayOut seen), refunded (Refund seen), refused (its debit
-- was refused: nothing applied), compensated (croupier returned an abandoned debit itself),
-- tombstone (a Refund came first). `confirmed`: a provider was answered 1 or 104 for the
-- debit. `last_call_at`: the provider's last call on it (an abandoned debit is judged by it).
CREATE TABLE seamless_bets (
    bet_no        bigint      GENERATED ALWAYS AS IDENTITY,
    provider_id   text        NOT NULL,
    bet_id        text        NOT NULL,
    session_id    uuid        NOT NULL,
    operator_id   text        NOT NULL,
    player_id     uuid        NOT NULL,
    currency      text        NOT NULL,
    round_id      text,
    kind          text        NOT NULL,
    fingerprint   text        NOT NULL,
    stake         numeric     NOT NULL,
    win           numeric,
    state         text        NOT NULL,
    confirmed     boolean     NOT NULL DEFAULT false,
    -- The provider's refund transaction id of a tombstone (a Refund with nothing to send).
    refund_tx     uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_call_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT seamless_bets_pkey PRIMARY KEY (bet_no),
    CONSTRAINT seamless_bets_provider_bet_unique UNIQUE (provider_id, bet_id),
    CONSTRAINT seamless_bets_session_fkey FOREIGN KEY (session_id) REFERENCES sessions (id),
    CONSTRAINT seamless_bets_no_range CHECK (bet_no > 0 AND bet_no < 9007199254740992),
    CONSTRAINT seamless_bets_kind_known
        CHECK (kind IN ('pay_in', 'pay_in_out', 'pay_out', 'refund')),
    CONSTRAINT seamless_bets_state_known CHECK (state IN
        ('open', 'settled', 'refunded', 'refused', 'compensated', 'tombstone')),
    CONSTRAINT seamless_bets_amounts_nonnegative CHECK (stake >= 0 AND (win IS NULL OR win >= 0))
);
CREATE INDEX seamless_bets_open_idx ON seamless_bets (last_call_at)
    WHERE state = 'open' AND NOT confirmed;

-- A money movement sent to the casino (or `payments/close`, type 0): written before its first
-- byte is sent, with the exact `data` string every attempt re-sends. (bet_no, type) is the
-- casino's idempotency key. States move forward only:
--   pending -> sent -> ok | refused | unknown;  unknown -> sent -> …;  pending|unknown -> stuck
-- and stuck -> ok | refused by a person. `meaning` is the casino's verdict as croupier reads
-- it (applied, not_found, insufficient_funds, …, void: never sent because an earlier leg of
-- the bet was refused). A lease (owner, until) lets one sender at a time send a leg.
CREATE TABLE seamless_legs (
    id                     uuid        NOT NULL,
    bet_no                 bigint      NOT NULL,
    seq                    smallint    NOT NULL,
    transaction_type       smallint    NOT NULL,
    amount                 numeric     NOT NULL,
    data                   text        NOT NULL,
    state                  text        NOT NULL DEFAULT 'pending',
    meaning                text,
    compensation           boolean     NOT NULL DEFAULT false,
    attempts               integer     NOT NULL DEFAULT 0,
    next_attempt_at        timestamptz,
    lease_owner            uuid,
    lease_until            timestamptz,
    casino_code            bigint,
    partner_transaction_id text,
    balance                numeric,
    message                text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    last_sent_at           timestamptz,
    -- When `payments/info` was last asked about this leg (an unknown debit).
    info_asked_at          timestamptz,
    final_at               timestamptz,
    resolved_by            text,
    resolution_note        text,
    CONSTRAINT seamless_legs_pkey PRIMARY KEY (id),
    CONSTRAINT seamless_legs_bet_fkey FOREIGN KEY (bet_no) REFERENCES seamless_bets (bet_no),
    CONSTRAINT seamless_legs_key_unique UNIQUE (bet_no, transaction_type),
    CONSTRAINT seamless_legs_seq_unique UNIQUE (bet_no, seq),
    CONSTRAINT seamless_legs_type_known CHECK (transaction_type IN (-2, -1, 0, 1, 2, 4)),
    CONSTRAINT seamless_legs_amount_nonnegative CHECK (amount >= 0),
    CONSTRAINT seamless_legs_state_known
        CHECK (state IN ('pending', 'sent', 'unknown', 'ok', 'refused', 'stuck')),
    CONSTRAINT seamless_legs_final_has_meaning
        CHECK ((state IN ('ok', 'refused')) = (final_at IS NOT NULL AND meaning IS NOT NULL))
);
CREATE INDEX seamless_legs_due_idx ON seamless_legs (next_attempt_at)
    WHERE state IN ('pending', 'unknown');
CREATE INDEX seamless_legs_open_idx ON seamless_legs (state) WHERE state NOT IN ('ok', 'refused');

-- Every HTTP exchange with a casino about a leg, for audit.
CREATE TABLE seamless_exchanges (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    leg_id       uuid        NOT NULL,
    attempt      integer     NOT NULL,
    started_at   timestamptz NOT NULL,
    elapsed_ms   integer     NOT NULL,
    http_status  integer,
    body         text,
    error        text,
    CONSTRAINT seamless_exchanges_pkey PRIMARY KEY (id),
    CONSTRAINT seamless_exchanges_leg_fkey FOREIGN KEY (leg_id) REFERENCES seamless_legs (id)
);
CREATE INDEX seamless_exchanges_leg_idx ON seamless_exchanges (leg_id);

-- A verdict that contradicts a final one (or names a leg croupier never sent): recorded,
-- never applied.
CREATE TABLE seamless_discrepancies (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    leg_id       uuid,
    bet_no       bigint      NOT NULL,
    transaction_type smallint NOT NULL,
    source       text        NOT NULL,
    reported     jsonb       NOT NULL,
    recorded     text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT seamless_discrepancies_pkey PRIMARY KEY (id),
    CONSTRAINT seamless_discrepancies_source_known CHECK (source IN ('answer', 'accept', 'info'))
);
