-- 0001: the core ledger tables.
--
-- Money is `numeric` (exact).
--
-- CHECK constraints on hot tables: PostgreSQL rebuilds every CHECK expression of a table from
-- its stored text at each INSERT or UPDATE statement, so the tables a bet writes carry only
-- the money rule: wallets and journal, nothing below zero; bets none. Their other rules
-- (known states and kinds, non-negative stakes, id lengths, references) are kept by the only
-- code that writes them, the ledger functions, and verified by `reconcile`. Every hot table carries `player_id` so that, past one primary,
-- the schema can be distributed by player (Citus) with every hot-path statement touching one
-- player's rows. Ids are UUIDv7 made by the application or the caller's own key: no sequence
-- on the hot path.

-- Everyone who calls us: game providers (bet API) and operators (casinos, transfer API).
CREATE TABLE counterparties (
    id          text        NOT NULL,
    name        text        NOT NULL,
    role        text        NOT NULL,
    -- The HMAC key, as given to the counterparty. Needed in clear to verify signatures.
    secret      text        NOT NULL,
    status      text        NOT NULL DEFAULT 'active',
    -- Providers only: whether a PayOut for a betId we never saw is a standalone (jackpot) win.
    -- When false such a PayOut is refused as "bet not found".
    standalone_wins boolean NOT NULL DEFAULT true,
    -- Providers only: the game URL for a launch, with {sessionId}, {gameId}, {language},
    -- {currency}, {mode}, {returnUrl} and {playerId} placeholders.
    launch_url_template text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT counterparties_pkey PRIMARY KEY (id),
    CONSTRAINT counterparties_id_shape CHECK (id ~ '^[A-Za-z0-9._-]{1,64}$'),
    CONSTRAINT counterparties_role_known CHECK (role IN ('provider', 'operator')),
    CONSTRAINT counterparties_status_known CHECK (status IN ('active', 'disabled')),
    CONSTRAINT counterparties_secret_length CHECK (length(secret) BETWEEN 8 AND 256)
);

-- A player of an operator. The operator's own id for the player is `external_id`.
CREATE TABLE players (
    id           uuid        NOT NULL,
    operator_id  text        NOT NULL,
    external_id  text        NOT NULL,
    status       text        NOT NULL DEFAULT 'active',
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT players_pkey PRIMARY KEY (id),
    CONSTRAINT players_operator_fkey FOREIGN KEY (operator_id) REFERENCES counterparties (id),
    CONSTRAINT players_operator_external_unique UNIQUE (operator_id, external_id),
    CONSTRAINT players_status_known CHECK (status IN ('active', 'blocked')),
    CONSTRAINT players_external_id_length CHECK (length(external_id) BETWEEN 1 AND 128)
);

-- One wallet per player and currency. `version` counts the wallet's journal rows, so the
-- journal of a wallet is a gap-free sequence 1..version. `locked` is the part of the balance
-- that may not be withdrawn (e.g. crypto deposits awaiting confirmations); the withdrawable
-- part is greatest(balance - locked, 0).
CREATE TABLE wallets (
    id          uuid        NOT NULL,
    player_id   uuid        NOT NULL,
    currency    text        NOT NULL,
    balance     numeric     NOT NULL DEFAULT 0,
    locked      numeric     NOT NULL DEFAULT 0,
    version     bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wallets_pkey PRIMARY KEY (id),
    CONSTRAINT wallets_player_fkey FOREIGN KEY (player_id) REFERENCES players (id),
    CONSTRAINT wallets_player_currency_unique UNIQUE (player_id, currency),
    -- The one CHECK on this hot table (see "CHECK constraints on hot tables" above).
    CONSTRAINT wallets_balance_nonnegative CHECK (balance >= 0 AND locked >= 0)
);

-- A game session: opened for one provider, on one player's wallet, for one game.
-- Bets need an open, unexpired session; wins and refunds only need it to exist.
CREATE TABLE sessions (
    id           uuid        NOT NULL,
    player_id    uuid        NOT NULL,
    wallet_id    uuid        NOT NULL,
    provider_id  text        NOT NULL,
    game_id      text        NOT NULL,
    status       text        NOT NULL DEFAULT 'open',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_wallet_fkey FOREIGN KEY (wallet_id) REFERENCES wallets (id),
    CONSTRAINT sessions_provider_fkey FOREIGN KEY (provider_id) REFERENCES counterparties (id),
    CONSTRAINT sessions_status_known CHECK (status IN ('open', 'closed'))
);
CREATE INDEX sessions_player_idx ON sessions (player_id);

-- A provider's bet, keyed by the provider's `betId`. The row is the idempotency record:
-- `kind` and `fingerprint` describe the first call that created it, so a repeat can be told
-- apart from a conflicting reuse of the same id.
--
-- No foreign keys on the hot tables (bets, journal): a foreign key to counterparties would
-- make every bet take a KEY SHARE lock on its provider's single row (thousands of concurrent
-- bets sharing one parent row turn into multixact contention), and each foreign key costs a
-- query per inserted row. The only writers are the ledger functions, which take the wallet
-- (and so player and session) from the row they have just locked; `reconcile` checks that
-- every journal row and bet names an existing wallet.
CREATE TABLE bets (
    provider_id  text        NOT NULL,
    bet_id       text        NOT NULL,
    player_id    uuid        NOT NULL,
    wallet_id    uuid        NOT NULL,
    session_id   uuid        NOT NULL,
    round_id     text,
    kind         text        NOT NULL,
    fingerprint  text        NOT NULL,
    stake        numeric     NOT NULL DEFAULT 0,
    win          numeric,
    state        text        NOT NULL,
    bet_tx       uuid,
    win_tx       uuid,
    refund_tx    uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    settled_at   timestamptz,
    refunded_at  timestamptz,
    -- kind: pay_in | pay_in_out | pay_out | refund; state: open | settled | refunded |
    -- tombstone; stake and win are never negative (written only by the ledger functions from
    -- checked amounts; `reconcile` flags anything else).
    CONSTRAINT bets_pkey PRIMARY KEY (provider_id, bet_id)
);
CREATE INDEX bets_player_created_idx ON bets (player_id, created_at);

-- Operator money movements (deposits, withdrawals, admin credits), keyed by the operator's
-- transaction id. Like `bets`, the row is the idempotency record: a refusal decided under the
-- wallet lock (insufficient balance, blocked player) is recorded too, so a retry with the
-- same id gets the same refusal instead of being tried again.
CREATE TABLE transfers (
    id              uuid        NOT NULL,
    operator_id     text        NOT NULL,
    transaction_id  text        NOT NULL,
    player_id       uuid        NOT NULL,
    wallet_id       uuid        NOT NULL,
    kind            text        NOT NULL,
    amount          numeric     NOT NULL,
    status          text        NOT NULL,
    refusal         text,
    balance_after   numeric     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transfers_pkey PRIMARY KEY (id),
    CONSTRAINT transfers_operator_transaction_unique UNIQUE (operator_id, transaction_id),
    CONSTRAINT transfers_wallet_fkey FOREIGN KEY (wallet_id) REFERENCES wallets (id),
    CONSTRAINT transfers_kind_known CHECK (kind IN ('deposit', 'withdrawal')),
    CONSTRAINT transfers_status_known CHECK (status IN ('completed', 'refused')),
    CONSTRAINT transfers_refusal_iff_refused CHECK ((status = 'refused') = (refusal IS NOT NULL)),
    CONSTRAINT transfers_amount_positive CHECK (amount > 0),
    CONSTRAINT transfers_transaction_id_length CHECK (length(transaction_id) BETWEEN 1 AND 128)
);
CREATE INDEX transfers_player_created_idx ON transfers (player_id, created_at);

-- The journal: one immutable row per balance change, written in the same transaction as the
-- change. For every wallet, `balance = sum(amount)` and the rows form the sequence
-- seq = 1..version with balance_after(seq) = balance_after(seq - 1) + amount.
CREATE TABLE journal (
    id             uuid        NOT NULL,
    wallet_id      uuid        NOT NULL,
    player_id      uuid        NOT NULL,
    seq            bigint      NOT NULL,
    kind           text        NOT NULL,
    amount         numeric     NOT NULL,
    balance_after  numeric     NOT NULL,
    provider_id    text,
    bet_id         text,
    transfer_id    uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT journal_pkey PRIMARY KEY (id),
    CONSTRAINT journal_wallet_seq_unique UNIQUE (wallet_id, seq),
    -- kind: bet | win | refund | win_reversal | deposit | withdrawal, with a bet reference
    -- (provider_id, bet_id) or a transfer_id (written only by ledger_post; `reconcile` flags
    -- anything else).
    CONSTRAINT journal_balance_after_nonnegative CHECK (balance_after >= 0)
);
-- No index by bet: every index is written by every bet. A bet's journal rows are found
-- through its wallet (bets.wallet_id, then journal by wallet and seq).

-- The journal is append-only (a trigger refuses edits) and changes to counterparties and
-- sessions notify the servers' caches: both triggers are in sql/functions/triggers.sql.
