-- Privileges on the schema, tables and functions.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).
-- Each privilege is revoked from the three roles first and granted again, so
-- an upgraded database ends with exactly the privileges of a fresh install.

REVOKE ALL ON steadytext_queue, steadytext_cache, steadytext_workers, steadytext_config,
              steadytext_dead_letter_queue, steadytext_migrations
    FROM PUBLIC, steadytext_user, steadytext_admin, steadytext_worker;
GRANT USAGE ON SCHEMA @extschema@ TO steadytext_user, steadytext_admin, steadytext_worker;
GRANT SELECT ON steadytext_queue, steadytext_workers TO steadytext_user;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON steadytext_queue, steadytext_cache, steadytext_workers, steadytext_config, steadytext_dead_letter_queue
    TO steadytext_admin;
GRANT SELECT ON steadytext_migrations TO steadytext_admin, steadytext_worker;  -- the worker checks the schema version at start
GRANT SELECT, UPDATE ON steadytext_queue TO steadytext_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON steadytext_cache TO steadytext_worker;
GRANT SELECT, INSERT, UPDATE ON steadytext_workers, steadytext_config TO steadytext_worker;

-- Functions: nothing for PUBLIC. steadytext_admin: all. steadytext_user:
-- all but the admin-only ones (clearing/evicting the shared cache, reading
-- the hand-off's connection string) and the helpers only SECURITY DEFINER
-- functions and triggers call. steadytext_worker: what the worker calls.
DO $$
DECLARE
    f record;
    admin_only constant text[] := ARRAY['steadytext_cache_clear', 'steadytext_cache_evict', 'steadytext_dblink_connstr',
                                        'steadytext_cleanup_results',
                                        '_steadytext_model_id', '_steadytext_check_queue_size',
                                        '_steadytext_queue_stamp', '_steadytext_queue_notify_completed'];
    for_worker constant text[] := ARRAY['steadytext_cache_evict', 'steadytext_cleanup_results', 'steadytext_limits', '_steadytext_limit',
                                        'steadytext_worker_status', 'steadytext_queue_stats', 'steadytext_cache_stats'];
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.proname AS name FROM pg_proc AS p
        WHERE p.pronamespace = '@extschema@'::regnamespace
          AND (p.proname LIKE 'steadytext\_%' OR p.proname LIKE '\_steadytext\_%')
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, steadytext_user, steadytext_admin, steadytext_worker', f.sig);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_admin', f.sig);
        IF NOT f.name = ANY (admin_only) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_user', f.sig);
        END IF;
        IF f.name = ANY (for_worker) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_worker', f.sig);
        END IF;
    END LOOP;
END;
$$;
