// steadytext_queue.result is text; this turns it into the value each function
// produces (formats: docs/architecture.md, "Result formats").
import type { FunctionName, RankedDocument } from '../interfaces.ts';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The value a completed request of function F resolves to. */
export type ResultOf<F extends FunctionName> = F extends 'embed'
  ? number[]
  : F extends 'rerank'
    ? RankedDocument[]
    : F extends 'generate_json'
      ? JsonValue
      : string;

/** Any function's result. */
export type AnyResult = ResultOf<FunctionName>;

export function parseResult<F extends FunctionName>(functionName: F, text: string): ResultOf<F>;
export function parseResult(functionName: FunctionName, text: string): AnyResult {
  switch (functionName) {
    case 'generate_json':
      return JSON.parse(text) as JsonValue;
    case 'embed':
      // pgvector's text form, which is also a JSON array: [0.1,0.2,...]
      return JSON.parse(text) as number[];
    case 'rerank':
      return JSON.parse(text) as RankedDocument[];
    default:
      return text;
  }
}
