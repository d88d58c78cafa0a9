-- Privileges on the schema, tables and functions.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).
-- Each privilege is revoked from the four roles first and granted again, so
-- an upgraded database ends with exactly the privileges of a fresh install.

REVOKE ALL ON @extschema@.steadytext_queue, @extschema@.steadytext_cache, @extschema@.steadytext_workers,
              @extschema@.steadytext_config, @extschema@.steadytext_dead_letter_queue,
              @extschema@.steadytext_migrations, @extschema@.steadytext_cache_hits,
              @extschema@.steadytext_pipelines, @extschema@.steadytext_pipeline_rows, @extschema@.steadytext_pipeline_progress,
              @extschema@.steadytext_pipeline_giveback
    FROM PUBLIC, steadytext_user, steadytext_admin, steadytext_worker, steadytext_handoff;
REVOKE ALL ON SEQUENCE @extschema@.steadytext_pipelines_pipeline_id_seq
    FROM PUBLIC, steadytext_user, steadytext_admin, steadytext_worker, steadytext_handoff;
GRANT USAGE ON SCHEMA @extschema@ TO steadytext_user, steadytext_admin, steadytext_worker, steadytext_handoff;
GRANT SELECT ON @extschema@.steadytext_queue, @extschema@.steadytext_workers TO steadytext_user;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON @extschema@.steadytext_queue, @extschema@.steadytext_cache, @extschema@.steadytext_workers,
       @extschema@.steadytext_config, @extschema@.steadytext_dead_letter_queue
    TO steadytext_admin;
GRANT SELECT ON @extschema@.steadytext_migrations TO steadytext_admin, steadytext_worker;
-- Pipelines (docs/pipelines.md): a role reads its own pipelines, and its
-- pipelines' triggers (which run as it) mark its own pipelines' rows; row-
-- level security keeps it to those. Everything else goes through the
-- functions.
GRANT SELECT ON @extschema@.steadytext_pipelines TO steadytext_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON @extschema@.steadytext_pipeline_rows TO steadytext_user;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON @extschema@.steadytext_pipelines, @extschema@.steadytext_pipeline_rows, @extschema@.steadytext_pipeline_progress,
       @extschema@.steadytext_pipeline_giveback
    TO steadytext_admin;
GRANT USAGE ON SEQUENCE @extschema@.steadytext_pipelines_pipeline_id_seq TO steadytext_admin;  -- the worker checks the schema version at start
-- The worker updates only the columns of a job's life (claim, start,
-- outcome, retry); never what a request is (function, parameters, owner,
-- priority, created_at, cache key), so it cannot forge a request nor make one
-- look old enough for retention to delete.
GRANT SELECT ON @extschema@.steadytext_queue TO steadytext_worker;
GRANT UPDATE (status, result, error, started_at, completed_at, failed_at, retry_count, max_retries, worker_id,
              run_at, attempt)
    ON @extschema@.steadytext_queue TO steadytext_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON @extschema@.steadytext_cache TO steadytext_worker;
GRANT SELECT, INSERT, UPDATE ON @extschema@.steadytext_workers TO steadytext_worker;
-- steadytext_worker: nothing on steadytext_config (it holds the hand-off's
-- password); model ids go through _steadytext_publish_model_ids.
-- steadytext_handoff: no table at all.

-- Functions: nothing for PUBLIC. steadytext_admin: all. steadytext_user:
-- all but the admin-only ones (clearing/evicting the shared cache, result
-- retention (92-retention.sql), the hand-off's connection string and setup) and the helpers only SECURITY
-- DEFINER functions, triggers, workers and the hand-off login call.
-- steadytext_worker: what the worker calls. steadytext_handoff: the three
-- functions the hand-off's autonomous session calls, nothing else.
DO $$
DECLARE
    f record;
    not_for_user constant text[] := ARRAY[
        'steadytext_cache_clear', 'steadytext_cache_evict', 'steadytext_cleanup_results', 'steadytext_dblink_connstr',
        'steadytext_setup_handoff',
        '_steadytext_model_id', '_steadytext_check_queue_size', '_steadytext_scoped_cache_key', '_steadytext_request_key',
        '_steadytext_quota_key', '_steadytext_quota_announced', '_steadytext_quota_inflight', '_steadytext_quota_reserve', '_steadytext_queued', '_steadytext_cache_fold',
        '_steadytext_scope_key', '_steadytext_cache_scope',
        '_steadytext_queue_stamp', '_steadytext_queue_notify_completed', '_steadytext_publish_model_ids',
        '_steadytext_lock_request',
        '_steadytext_handoff_insert', '_steadytext_handoff_status', '_steadytext_handoff_cancel',
        '_steadytext_pipeline_install', '_steadytext_pipeline_uninstall', '_steadytext_pipeline_scan_claim', '_steadytext_pipeline_held',
        '_steadytext_pipeline_claim', '_steadytext_pipeline_write', '_steadytext_pipeline_release',
        '_steadytext_pipeline_refuse', '_steadytext_pipeline_reclaim'];
    for_worker constant text[] := ARRAY[
        '_steadytext_pipeline_claim', '_steadytext_pipeline_write', '_steadytext_pipeline_release',
        '_steadytext_pipeline_refuse', '_steadytext_pipeline_reclaim', 'steadytext_pipeline_status',
        '_steadytext_pipeline_report', '_steadytext_pipeline_change_check', 'steadytext_pipeline_failures',
        '_steadytext_pipeline_failed', '_steadytext_model_role',
        'steadytext_cache_evict', 'steadytext_cleanup_results', 'steadytext_limits', '_steadytext_limit', '_steadytext_limit_defaults',
        '_steadytext_is_operator', '_steadytext_operator_guc', 'steadytext_worker_status', 'steadytext_queue_stats',
        'steadytext_cache_stats', '_steadytext_publish_model_ids', '_steadytext_heartbeat_lost', '_steadytext_cache_fold'];
    for_handoff constant text[] := ARRAY[
        '_steadytext_handoff_insert', '_steadytext_handoff_status', '_steadytext_handoff_cancel'];
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.proname AS name FROM pg_catalog.pg_proc AS p
        WHERE p.pronamespace = '@extschema@'::regnamespace
          AND (p.proname LIKE 'steadytext\_%' OR p.proname LIKE '\_steadytext\_%')
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, steadytext_user, steadytext_admin, steadytext_worker, steadytext_handoff', f.sig);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_admin', f.sig);
        IF NOT f.name = ANY (not_for_user) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_user', f.sig);
        END IF;
        IF f.name = ANY (for_worker) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_worker', f.sig);
        END IF;
        IF f.name = ANY (for_handoff) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO steadytext_handoff', f.sig);
        END IF;
    END LOOP;
END;
$$;
