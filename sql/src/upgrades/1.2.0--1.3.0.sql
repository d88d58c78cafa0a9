-- Upgrade 1.2.0 -> 1.3.0, hand-written part: what the repeatable source files
-- cannot do by running again. test/sql/upgrade.test.ts proves the result
-- equals a fresh 1.3.0 install, from every released version.
--
-- 1.3.0 changes functions and triggers only, which the repeatable sources
-- replace in place:
--   * the completion NOTIFY trigger is statement-level over transition tables
--     (one PL/pgSQL call per statement instead of one per row). A row trigger
--     cannot become a statement trigger by CREATE OR REPLACE, so the two are
--     dropped here and the repeatable sources create them again;
--   * batch enqueue reads each item's cache key alongside the item
--     (unnest of both arrays) instead of subscripting the key array per item,
--     which cost O(n) per subscript: O(n^2) per call;
--   * the heartbeat rule (when a worker counts as lost) has one home,
--     _steadytext_heartbeat_lost, asked by steadytext_worker_status(), the
--     synchronous functions' worker check and the worker's reclaim.

DROP TRIGGER steadytext_queue_completed_insert ON @extschema@.steadytext_queue;
DROP TRIGGER steadytext_queue_completed_update ON @extschema@.steadytext_queue;
