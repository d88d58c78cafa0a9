-- Roles: four cluster-wide NOLOGIN group roles (docs/security.md).
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Roles and privileges (docs/security.md)
-- ===========================================================================
-- Four NOLOGIN group roles; grant them to login roles
-- (CREATE ROLE app LOGIN PASSWORD '...' IN ROLE steadytext_user):
--   steadytext_user    enqueue, wait on, check, cancel and retry its OWN
--                      requests; SELECT on steadytext_queue shows only rows
--                      whose owner_role is the current role (row-level
--                      security); no direct writes, no cache or config access.
--   steadytext_admin   every function and every row; full DML on the tables.
--   steadytext_worker  what a worker does: claim/complete/fail/reclaim/
--                      release rows of steadytext_queue, heartbeat in
--                      steadytext_workers, write steadytext_cache and the
--                      model ids (through _steadytext_publish_model_ids; it
--                      cannot read steadytext_config). No DDL, no DELETE on
--                      the queue.
--   steadytext_handoff the request-response hand-off's login
--                      (steadytext_setup_handoff() makes it, a member of
--                      this group): only the three _steadytext_handoff_*
--                      functions, nothing else.
-- Superusers and the role owning the tables (the installer) see everything.
-- Roles are cluster-wide: a second database's install finds them already
-- there (or created meanwhile by a concurrent install).
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['steadytext_user', 'steadytext_admin', 'steadytext_worker', 'steadytext_handoff'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by an install into another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'pg_steadytext: role % does not exist and % may not create it', r, current_user
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'Have a superuser run CREATE ROLE steadytext_user NOLOGIN; CREATE ROLE steadytext_admin NOLOGIN; CREATE ROLE steadytext_worker NOLOGIN; CREATE ROLE steadytext_handoff NOLOGIN; then install again.';
        END;
    END LOOP;
END;
$$;
