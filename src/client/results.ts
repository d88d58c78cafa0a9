// steadytext_queue.result is text; this turns it into the value each function
// produces (each job type's result format: src/jobTypes.ts).
import { isFunctionName, readResult, type JsonValue, type ResultOf } from '../jobTypes.ts';
import type { FunctionName } from '../interfaces.ts';

export type { JsonValue, ResultOf };

/** Any function's result. */
export type AnyResult = ResultOf<FunctionName>;

/** The value of a completed request's result; the text as it is for a function_name this client does not know. */
export function parseResult<F extends FunctionName>(functionName: F, text: string): ResultOf<F> {
  return isFunctionName(functionName) ? readResult(functionName, text) : (text as ResultOf<F>);
}
