-- Upgrade 1.3.0 -> 1.4.0, hand-written part: what the repeatable source files
-- cannot do by running again. test/sql/upgrade.test.ts proves the result
-- equals a fresh 1.4.0 install, from every released version.
--
-- 1.4.0 is the isolation release: nothing one session does (an open
-- transaction, a savepoint, a pattern, a batch-mate) may stall or fail
-- anyone else's work.
--
-- Objects the repeatable sources cannot change:
--   * steadytext_cache_hits (a cache hit is appended there instead of
--     updating the entry inside the caller's transaction, where it held a row
--     lock other tenants and the workers' completions waited on);
--   * _steadytext_handoff_insert takes only what the hand-off cannot
--     recompute (the request, its owner, the calling backend) and derives the
--     cache key, model id and limits itself: the old signature is dropped.

CREATE TABLE @extschema@.steadytext_cache_hits (
    cache_key text NOT NULL,
    hits      bigint NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);

DROP FUNCTION @extschema@._steadytext_handoff_insert(uuid, text, jsonb, integer, text, text, name, integer, integer);
