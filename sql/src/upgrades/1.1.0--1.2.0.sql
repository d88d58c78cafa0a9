-- Upgrade 1.1.0 -> 1.2.0, hand-written part: what the repeatable source files
-- cannot do by running again. test/sql/upgrade.test.ts proves the result
-- equals a fresh 1.2.0 install, from 1.1.0 and from 1.0.0 (1.0.0 -> 1.1.0 ->
-- 1.2.0).
--
-- 1.2.0 changes functions and triggers, which the repeatable sources replace
-- in place (CREATE OR REPLACE keeps every privilege and dependency), and adds
-- one column (below):
--   * batch enqueue: the shared arguments' part of the cache key is filtered
--     once per call, each item costs one digest (_steadytext_cache_parameters,
--     _steadytext_cache_digests; steadytext_cache_key is built from the same
--     two, so the keys are unchanged);
--   * the cache scope is read once per call (_steadytext_cache_scope,
--     _steadytext_scope_key);
--   * the completed_at trigger is no longer called for claims and releases,
--     nor for completions that set completed_at themselves.
--   * steadytext_workers.served_functions: the job types a worker claims,
--     written when it registers (NULL: every type, as every 1.1.0 worker), so
--     `steadytext status` can say when pending jobs have no running worker
--     that takes them, and a synchronous call raises 55000 at once instead of
--     waiting out its timeout.

ALTER TABLE @extschema@.steadytext_workers ADD COLUMN served_functions text[];
-- The synchronous functions' worker check takes the job type now.
DROP FUNCTION @extschema@._steadytext_require_worker(text);
