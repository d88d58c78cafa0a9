-- Model ids and the caller identity used by SECURITY DEFINER helpers.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- Model id per role ('generation', 'embedding', 'reranking') as the workers
-- published it in steadytext_config ('model.<role>'); 'default-<role>' before
-- any worker started.
CREATE OR REPLACE FUNCTION _steadytext_model_id(role text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT c.value #>> '{}' FROM steadytext_config AS c WHERE c.key = 'model.' || role),
        'default-' || role)
$$;

-- The role a SECURITY DEFINER helper acts for. Inside such a helper
-- current_user is the extension's owner, so its callers pass their own
-- current_user (the helpers' `caller name DEFAULT current_user` is evaluated
-- in the caller's context, before the helper's). A role named explicitly is
-- accepted only if the session could become it anyway: it is the session
-- user, or the session user is a member of it (as SET ROLE requires).
-- Raises 42501 otherwise.
CREATE OR REPLACE FUNCTION _steadytext_caller(caller name)
RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    IF caller IS NULL
       OR NOT (caller = session_user
               OR (EXISTS (SELECT 1 FROM pg_roles AS r WHERE r.rolname = caller)
                   AND pg_has_role(session_user, caller, 'MEMBER'))) THEN
        RAISE EXCEPTION 'steadytext: session user % cannot act for role %', session_user, coalesce(quote_ident(caller), 'NULL')
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN caller;
END;
$$;

-- Whether `who` sees every request (not only those it owns): a superuser, a
-- member of steadytext_admin or steadytext_worker, or of the role owning
-- steadytext_queue. The row-level security policies say the same.
CREATE OR REPLACE FUNCTION _steadytext_sees_all(who name)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = @extschema@, pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = who), false)
        OR pg_has_role(who, 'steadytext_admin', 'MEMBER')
        OR pg_has_role(who, 'steadytext_worker', 'MEMBER')
        OR pg_has_role(who, (SELECT c.relowner FROM pg_class AS c WHERE c.oid = 'steadytext_queue'::regclass), 'MEMBER');
END;
$$;
