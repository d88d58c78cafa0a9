-- Upgrade 1.0.0 -> 1.1.0, hand-written part: what the repeatable source files
-- cannot do by running again. Tables gain columns at their end (a fresh
-- install lists them last too), functions whose signature or return type
-- changes are dropped here first, objects 1.1.0 no longer has are dropped.
-- test/sql/upgrade.test.ts proves the result equals a fresh 1.1.0 install.

-- ---------------------------------------------------------------------------
-- Security (issue: no path from a tenant, a worker login or a schema owner
-- to anyone else's rights)
-- ---------------------------------------------------------------------------
-- Helpers whose arguments changed: the enqueue helpers take the parameters
-- and validate them themselves; the cache lookup validates too and names its
-- caller; the queue-size check counts the owner's rows as well.
DROP FUNCTION @extschema@._steadytext_enqueue(text, text, text, jsonb, boolean, integer, name);
DROP FUNCTION @extschema@._steadytext_enqueue_batch(text, text, text, jsonb, text, text[], boolean, integer, name);
DROP FUNCTION @extschema@._steadytext_cache_lookup(text, text, jsonb);
DROP FUNCTION @extschema@._steadytext_sync(text, text, text, jsonb, boolean);
DROP FUNCTION @extschema@._steadytext_check_queue_size(text, bigint);
-- 1.0.0's `steadytext up` stored the installing superuser's own connection
-- string, password included, as 'dblink_connstr' (readable by workers). The
-- hand-off now logs in only as its own login (steadytext_setup_handoff(),
-- which `steadytext up` / `migrate` run; `up` stores its host and port again,
-- without user or password) and refuses a superuser; any 1.0.0 string named a
-- role the hand-off's remote side would refuse. So it goes.
DELETE FROM @extschema@.steadytext_config WHERE key = 'dblink_connstr';
-- The per-role quota's index (as in 10-tables.sql).
CREATE INDEX steadytext_queue_owner_active_idx ON @extschema@.steadytext_queue (owner_role)
    WHERE status IN ('pending', 'processing');


-- ---------------------------------------------------------------------------
-- Structured output (one contract between the enqueue and the engine)
-- ---------------------------------------------------------------------------
-- Nothing hand-written: the validators keep their signatures, and the new
-- _steadytext_structured_* helpers come from 25-structured-validation.sql.


-- ---------------------------------------------------------------------------
-- Lifecycle (result retention)
-- ---------------------------------------------------------------------------
-- Nothing to change by hand: steadytext_cleanup_results (92-retention.sql) is
-- new in 1.1.0 and created by the repeatable part below; it uses the existing
-- steadytext_queue_completed_at_idx.


-- ---------------------------------------------------------------------------
-- Set-based enqueue
-- ---------------------------------------------------------------------------

