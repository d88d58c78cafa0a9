-- Upgrade 1.7.0 -> 1.8.0, hand-written part: what the repeatable source files
-- cannot do by running again. test/sql/upgrade.test.ts proves the result
-- equals a fresh 1.8.0 install, from every released version.
--
-- 1.8.0: the scan over a pipeline's source claims the rows it finds for the
-- worker that runs it (_steadytext_pipeline_scan_claim), instead of making
-- them pending for a claim to take: a backfilled row's bookkeeping is
-- written twice (inserted as claimed, written as done), not three times.
-- The scan step it replaces has no caller left.
DROP FUNCTION IF EXISTS @extschema@._steadytext_pipeline_scan(integer, integer);
