-- The async functions: generation, embeddings, structured, batch, rerank.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- steadytext_<name>_async and steadytext_<name>_batch_async
-- ===========================================================================
-- Every enqueue function hands its arguments, as jsonb keyed by argument
-- name, to a SECURITY DEFINER helper that validates all of them before
-- writing anything (_steadytext_validate: one validation path per function):
-- NULL -> 22004, bad value -> 22023, over a limit -> 54000 (see
-- steadytext_limits()); the message names the function and the argument.

-- The functions themselves are written from the job-type catalog
-- (src/jobTypes.ts) by the build, in catalog order:
-- @job-types async-functions
