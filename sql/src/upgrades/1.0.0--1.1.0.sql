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
-- Nothing hand-written: the validators keep their signatures, and the new
-- _steadytext_structured_* helpers come from 25-structured-validation.sql.


-- ---------------------------------------------------------------------------
-- Lifecycle (result retention)
-- ---------------------------------------------------------------------------


-- ---------------------------------------------------------------------------
-- Set-based enqueue
-- ---------------------------------------------------------------------------

