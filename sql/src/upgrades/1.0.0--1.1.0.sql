-- Upgrade 1.0.0 -> 1.1.0, hand-written part: what the repeatable source files
-- cannot do by running again. Tables gain columns at their end (a fresh
-- install lists them last too), functions whose signature or return type
-- changes are dropped here first, objects 1.1.0 no longer has are dropped.
-- test/sql/upgrade.test.ts proves the result equals a fresh 1.1.0 install.

-- ---------------------------------------------------------------------------
-- Security (issue: no path from a tenant, a worker login or a schema owner
-- to anyone else's rights)
-- ---------------------------------------------------------------------------


-- ---------------------------------------------------------------------------
-- Structured output (one contract between the enqueue and the engine)
-- ---------------------------------------------------------------------------


-- ---------------------------------------------------------------------------
-- Lifecycle (result retention)
-- ---------------------------------------------------------------------------
-- Nothing to change by hand: steadytext_cleanup_results (92-retention.sql) is
-- new in 1.1.0 and created by the repeatable part below; it uses the existing
-- steadytext_queue_completed_at_idx.


-- ---------------------------------------------------------------------------
-- Set-based enqueue
-- ---------------------------------------------------------------------------

