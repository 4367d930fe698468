-- 0003: helpers for the operator API.

-- A time given by an operator: epoch milliseconds ("1719766120806") or RFC 3339 text.
-- Integer arithmetic on milliseconds: no floating point between the caller and the time.
CREATE FUNCTION parse_time(p text) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p ~ '^[0-9]{1,15}$'
                THEN timestamptz 'epoch' + p::bigint * interval '1 millisecond'
                ELSE p::timestamptz END
$$;

-- The session id of load-test player n of a provider (see `croupier admin` load players):
-- deterministic, so a pgbench script reaches the same sessions as the HTTP load generator.
-- Immutable operators only, so that it is inlined rather than parsed at every call.
CREATE FUNCTION load_session_id(p_provider text, n integer) RETURNS uuid
LANGUAGE sql IMMUTABLE AS $$
    SELECT md5('load-session:' || p_provider || ':' || n::text)::uuid
$$;
