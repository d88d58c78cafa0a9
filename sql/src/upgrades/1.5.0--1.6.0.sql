-- Upgrade 1.5.0 -> 1.6.0, hand-written part: what the repeatable source files
-- cannot do by running again. test/sql/upgrade.test.ts proves the result
-- equals a fresh 1.6.0 install, from every released version.
--
-- 1.6.0: a pipeline's embeddings reach PostgreSQL as binary vectors (one
-- real[] a batch) instead of text, which PostgreSQL had to parse number by
-- number. Functions whose arguments or results change are dropped here and
-- made again by sql/src/47-pipelines.sql:
--   _steadytext_pipeline_write   gains `vectors` and `vector_starts`
--   _steadytext_pipeline_claim   returns `vectors` (send this batch's as vectors)
--   _steadytext_pipeline_install gains `triggers` (the claim rewrites an old
--                                pipeline's functions without its triggers)
-- Each pipeline's own _stxp_<id>_write gains the same arguments. Those
-- functions belong to the pipeline's creator, not to the extension, so an
-- extension script may not replace them: the first claim of each pipeline
-- after the upgrade rewrites them (_steadytext_pipeline_claim).
DROP FUNCTION IF EXISTS @extschema@._steadytext_pipeline_write(integer, text, text, jsonb[], bigint[], text[], text[], text[]);
DROP FUNCTION IF EXISTS @extschema@._steadytext_pipeline_claim(text, integer, jsonb, text[]);
DROP FUNCTION IF EXISTS @extschema@._steadytext_pipeline_install(integer);
