-- The crypto review queue: what a person must look at (a deposit, a payout, or an event that
-- could never be confirmed). One open entry per thing and reason: queueing the same again is a
-- no-op.

CREATE FUNCTION crypto_review(p_subject text, p_id uuid, p_player uuid, p_reason text,
                              p_detail text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO crypto_reviews (id, subject, subject_id, player_id, reason, detail)
    VALUES (gen_random_uuid(), p_subject, p_id, p_player, p_reason, p_detail)
    ON CONFLICT (subject_id, reason) WHERE resolved_at IS NULL DO NOTHING
$$;
