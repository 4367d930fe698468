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
