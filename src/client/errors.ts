// Named errors of the client. Every one carries the request it is about, so a
// caller can catch a class and still say which job it was.

/** Base class of every error the client raises itself (SQL errors pass through as pg's DatabaseError). */
export class SteadyTextError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The job ended `failed`; `error` is steadytext_queue.error (the worker's last error). */
export class JobFailedError extends SteadyTextError {
  constructor(
    readonly requestId: string,
    readonly error: string | null,
  ) {
    super(`request ${requestId} failed: ${error ?? '(no error recorded)'}`);
  }
}

/** The job was cancelled (steadytext_cancel_async). */
export class JobCancelledError extends SteadyTextError {
  constructor(readonly requestId: string) {
    super(`request ${requestId} was cancelled`);
  }
}

/** No request has that id (or it was enqueued in a transaction that has not committed). */
export class JobNotFoundError extends SteadyTextError {
  constructor(readonly requestId: string) {
    super(`request ${requestId} not found`);
  }
}

/** The wait ran past its timeout. `requestIds` are the ids still unfinished. */
export class TimeoutError extends SteadyTextError {
  constructor(
    readonly requestIds: string[],
    readonly timeoutSeconds: number,
  ) {
    super(
      requestIds.length === 1
        ? `request ${requestIds[0]} did not finish within ${timeoutSeconds} s`
        : `${requestIds.length} requests did not finish within ${timeoutSeconds} s`,
    );
  }
}

/** The wait was stopped by the caller's AbortSignal. */
export class AbortError extends SteadyTextError {
  constructor(readonly reason: unknown) {
    super(`aborted: ${String(reason ?? 'abort')}`);
  }
}
