-- 0012: each operator's own treasury, crypto payouts from crypto-funded value, and winnings
-- made on unconfirmed deposits kept locked.
--
-- `payout_wallet` is the provider wallet (on the operator's `payout_rail`) its players'
-- payouts are sent from; each payout keeps the wallet it was held for (`source_wallet`), so a
-- later change of treasury never redirects a payout in flight. `fiat_crypto_payouts` lets an
-- operator pay out in crypto value that did not come in as crypto (off by default).
ALTER TABLE counterparties ADD COLUMN payout_wallet text;
ALTER TABLE counterparties ADD COLUMN fiat_crypto_payouts boolean NOT NULL DEFAULT false;
ALTER TABLE crypto_payouts ADD COLUMN source_wallet text;

-- Staking unconfirmed deposits is off unless an operator turns it on. Operators made before
-- keep the setting they had.
ALTER TABLE counterparties ALTER COLUMN locked_play SET DEFAULT false;

-- Winnings and refunds credited while the wallet holds an unconfirmed deposit and its operator
-- lets locked funds be staked: counted in `locked` too, until no deposit of the wallet is
-- unconfirmed any more.
ALTER TABLE wallets ADD COLUMN locked_wins numeric NOT NULL DEFAULT 0;
ALTER TABLE wallets ADD CONSTRAINT wallets_locked_wins_bounded
    CHECK (locked_wins >= 0 AND locked_wins <= locked);

-- What a wallet took in and paid out in crypto, read at each payout.
CREATE INDEX crypto_deposits_wallet_idx ON crypto_deposits (wallet_id) WHERE state = 'completed';
CREATE INDEX crypto_payouts_wallet_idx ON crypto_payouts (wallet_id);
