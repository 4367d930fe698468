-- 0007: a player's inabit customer that a server is creating right now is a claim of its own
-- (`claimed_at`, no customer id yet), so that two servers do not both create one. A row is
-- either a claim or a kept customer, never both or neither. A claim older than a creation can
-- take is a dead server's and may be taken over; `claimed_at` tells a claim from the one that
-- took it over.
ALTER TABLE crypto_customers
    ALTER COLUMN customer_uuid DROP NOT NULL,
    ADD COLUMN claimed_at timestamptz,
    ADD CONSTRAINT crypto_customers_claim_or_customer
        CHECK ((customer_uuid IS NULL) <> (claimed_at IS NULL));
