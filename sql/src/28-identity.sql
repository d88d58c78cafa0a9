-- Model ids and the caller identity used by SECURITY DEFINER helpers.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- Model id per role ('generation', 'embedding', 'reranking') as the workers
-- published it in steadytext_config ('model.<role>'); 'default-<role>' before
-- any worker started.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_model_id(role text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT c.value #>> '{}' FROM @extschema@.steadytext_config AS c WHERE c.key = 'model.' || role),
        'default-' || role)
$$;

-- The role a SECURITY DEFINER helper acts for. Inside such a helper
-- current_user is the extension's owner, so its callers pass their own
-- current_user (the helpers' `caller name DEFAULT current_user` is evaluated
-- in the caller's context, before the helper's). A role named explicitly is
-- accepted only if the session could become it anyway: it is the session
-- user, or the session user may SET ROLE to it (pg_has_role(..., 'SET') on
-- PostgreSQL 16+, where membership alone no longer grants SET ROLE; on 15,
-- where SET ROLE needs exactly membership, 'MEMBER'). Raises 42501 otherwise.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_caller(caller name)
RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ok boolean := false;
BEGIN
    IF caller IS NOT NULL THEN
        IF caller = session_user THEN
            ok := true;
        ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r WHERE r.rolname = caller) THEN
            IF current_setting('server_version_num')::integer >= 160000 THEN
                ok := pg_catalog.pg_has_role(session_user, caller, 'SET');
            ELSE
                ok := pg_catalog.pg_has_role(session_user, caller, 'MEMBER');
            END IF;
        END IF;
    END IF;
    IF NOT ok THEN
        RAISE EXCEPTION 'steadytext: session user % cannot act for role %', session_user, coalesce(quote_ident(caller), 'NULL')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN caller;
END;
$$;

-- Whether `who` sees every request (not only those it owns): a superuser, a
-- member of steadytext_admin or steadytext_worker, or of the role owning
-- steadytext_queue. The row-level security policies say the same.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_sees_all(who name)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = who), false)
        OR pg_has_role(who, 'steadytext_admin', 'MEMBER')
        OR pg_has_role(who, 'steadytext_worker', 'MEMBER')
        OR pg_has_role(who, (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = '@extschema@.steadytext_queue'::regclass), 'MEMBER');
END;
$$;

-- What a worker may write in steadytext_config: its engine's model id per
-- role, {"generation": "...", "embedding": "...", "reranking": "..."} (any
-- subset), upserted as 'model.<role>'. Nothing else: a worker can neither
-- read the config (it holds the hand-off's password) nor change any other
-- key. Raises 22023 for another key or a value that is not a non-empty
-- string of at most 512 bytes. SECURITY DEFINER (steadytext_worker and
-- steadytext_admin only).
CREATE OR REPLACE FUNCTION @extschema@._steadytext_publish_model_ids(ids jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad text;
BEGIN
    IF ids IS NULL OR jsonb_typeof(ids) <> 'object' THEN
        RAISE EXCEPTION '_steadytext_publish_model_ids: ids must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT e.key INTO bad FROM jsonb_each(ids) AS e
    WHERE e.key NOT IN ('generation', 'embedding', 'reranking')
       OR jsonb_typeof(e.value) <> 'string' OR (e.value #>> '{}') = '' OR octet_length(e.value #>> '{}') > 512
    ORDER BY e.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '_steadytext_publish_model_ids: % is not a model role with a model id (generation, embedding, reranking: a non-empty string)', quote_literal(bad)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO @extschema@.steadytext_config AS c (key, value, updated_at)
    SELECT 'model.' || e.key, e.value, now() FROM jsonb_each(ids) AS e
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
    WHERE c.value IS DISTINCT FROM excluded.value;
END;
$$;
