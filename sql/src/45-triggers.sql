-- Queue triggers.
-- Runs on a fresh install and again at the end of every upgrade script:
-- every statement here must be repeatable (CREATE OR REPLACE, GRANT).

-- ===========================================================================
-- Queue triggers: completed_at bookkeeping and the completion NOTIFY
-- ===========================================================================

-- BEFORE: a row entering a terminal state gets completed_at (now(), unless the
-- statement sets one) and, entering 'failed', failed_at; a row leaving the
-- terminal states (retry) loses completed_at.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_queue_stamp()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.status IN ('completed', 'failed', 'cancelled') THEN
        IF NEW.completed_at IS NULL
           OR (TG_OP = 'UPDATE' AND NEW.completed_at IS NOT DISTINCT FROM OLD.completed_at) THEN
            NEW.completed_at := now();
        END IF;
        IF NEW.status = 'failed' AND NEW.failed_at IS NULL THEN
            NEW.failed_at := NEW.completed_at;
        END IF;
    ELSE
        NEW.completed_at := NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER steadytext_queue_stamp_insert
    BEFORE INSERT ON @extschema@.steadytext_queue
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed', 'cancelled') OR NEW.completed_at IS NOT NULL)
    EXECUTE FUNCTION @extschema@._steadytext_queue_stamp();

-- Fires only where the function changes something: a row entering a terminal
-- state whose statement left completed_at (or a failure's failed_at) to it,
-- or a row leaving the terminal states that still has a completed_at. The
-- claim (pending -> processing) and the release (processing -> pending) do not
-- call it: every claim and every completion that sets its own completed_at
-- saves a PL/pgSQL call per row.
CREATE OR REPLACE TRIGGER steadytext_queue_stamp_update
    BEFORE UPDATE ON @extschema@.steadytext_queue
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status AND (
        CASE WHEN NEW.status IN ('completed', 'failed', 'cancelled')
             THEN NEW.completed_at IS NULL OR NEW.completed_at IS NOT DISTINCT FROM OLD.completed_at
                  OR (NEW.status = 'failed' AND NEW.failed_at IS NULL)
             ELSE NEW.completed_at IS NOT NULL
        END))
    EXECUTE FUNCTION @extschema@._steadytext_queue_stamp();

-- AFTER: exactly one NOTIFY steadytext_completed per terminal transition,
-- payload {"request_id","function","status"[, "batch_id"]} (batch_id only for
-- a batch's rows: json_strip_nulls), sent at commit.
-- Statement-level over the statement's transition tables: one call per
-- INSERT/UPDATE statement, whatever its row count, where a row trigger cost a
-- PL/pgSQL call per row (the worker completes its jobs in groups; a group of
-- 128 made 128 trigger calls). A row counts once: born terminal (INSERT), or
-- entering a terminal state from another (UPDATE, old and new row matched by
-- request_id, which no statement changes).
-- The old and new rows are matched by a hash (or merge) join, never a nested
-- loop (enable_nestloop off): the planner's estimate of a transition table
-- inside a data-modifying WITH is one row, and a nested loop over a
-- completion group of 1,000 rows compared a million pairs.
CREATE OR REPLACE FUNCTION @extschema@._steadytext_queue_notify_completed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_nestloop = off
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('steadytext_completed',
            json_strip_nulls(json_build_object('request_id', n.request_id, 'function', n.function_name,
                                               'status', n.status, 'batch_id', n.batch_id))::text)
        FROM new_rows AS n
        WHERE n.status IN ('completed', 'failed', 'cancelled');
    ELSE
        PERFORM pg_notify('steadytext_completed',
            json_strip_nulls(json_build_object('request_id', n.request_id, 'function', n.function_name,
                                               'status', n.status, 'batch_id', n.batch_id))::text)
        FROM new_rows AS n JOIN old_rows AS o ON o.request_id = n.request_id
        WHERE n.status IN ('completed', 'failed', 'cancelled')
          AND o.status IS DISTINCT FROM n.status;
    END IF;
    RETURN NULL;
END;
$$;

-- (A trigger with transition tables takes one event: one for each.)
CREATE OR REPLACE TRIGGER steadytext_queue_completed_insert
    AFTER INSERT ON @extschema@.steadytext_queue
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION @extschema@._steadytext_queue_notify_completed();

CREATE OR REPLACE TRIGGER steadytext_queue_completed_update
    AFTER UPDATE ON @extschema@.steadytext_queue
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION @extschema@._steadytext_queue_notify_completed();
