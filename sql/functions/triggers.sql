-- Trigger functions and their triggers.
--
-- The triggers live here with their functions rather than in a numbered migration: the
-- functions layer drops and re-creates both whenever this folder changes.

-- The journal is append-only: corrections are new rows, never edits.
CREATE FUNCTION journal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journal is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();

-- Cache invalidation: the servers LISTEN on this channel and drop what changed.
CREATE FUNCTION notify_cache_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('croupier_cache', TG_TABLE_NAME || ':' || OLD.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER counterparties_cache AFTER UPDATE OR DELETE ON counterparties
    FOR EACH ROW EXECUTE FUNCTION notify_cache_change();
CREATE TRIGGER sessions_cache AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION notify_cache_change();

-- A seamless operator's settings, by operator id (a new row too: the operator changes mode).
CREATE FUNCTION notify_seamless_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('croupier_cache', 'seamless_operators:'
                      || CASE WHEN TG_OP = 'DELETE' THEN OLD.operator_id ELSE NEW.operator_id END);
    RETURN NULL;
END
$$;
CREATE TRIGGER seamless_operators_cache AFTER INSERT OR UPDATE OR DELETE ON seamless_operators
    FOR EACH ROW EXECUTE FUNCTION notify_seamless_change();
