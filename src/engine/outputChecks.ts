// Checks shared by every engine (local and inference servers): the options a
// generation takes, and the checks every structured result passes, so that a
// result is checked the same way wherever it was generated. `truncated`: the
// generation stopped at max_tokens (the error then says so).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { splitThinking } from './chatTemplate.ts';
import { acceptRegexOutput, linearRegExp, type RegexMatcher } from './regexGrammar.ts';
import { EngineError, EngineInputError, type GenerateOptions } from './types.ts';

export function validateGenerateOptions(opts: GenerateOptions): void {
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1 || opts.maxTokens > 4096) {
    throw new EngineInputError(`maxTokens must be an integer in 1..4096, got ${opts.maxTokens}`);
  }
  if (!Number.isInteger(opts.seed)) throw new EngineInputError(`seed must be an integer, got ${opts.seed}`);
}

// The output check: ajv (JSON Schema 2020-12, for prefixItems) with formats,
// whose `pattern` runs on the engine's linear-time matcher instead of a
// backtracking RegExp. checkSchema has already vetted the schema, so `$schema`
// naming another draft does not stop it.
const ajv = new Ajv2020({ strict: false, allErrors: false, validateSchema: false, code: { regExp: linearRegExp } });
addFormatsModule.default(ajv); // CommonJS: the plugin is the module's `default`

export function schemaValidator(schema: unknown) {
  try {
    return ajv.compile(schema as object);
  } catch (err) {
    throw new EngineInputError(`invalid JSON schema: ${(err as Error).message}`, { cause: err });
  }
}

function incomplete(truncated: boolean, maxTokens: number, what: string, otherwise: string): EngineError {
  return new EngineError(truncated ? `max_tokens (${maxTokens}) reached before ${what}` : otherwise);
}

/** The JSON document a generate_json job returns: parsed, and valid against its schema. */
export function checkJsonOutput(text: string, validate: ValidateFunction, truncated: boolean, maxTokens: number): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw incomplete(truncated, maxTokens, 'the JSON was complete', 'the model produced incomplete JSON');
  }
  if (!validate(value)) {
    throw new EngineError(`the generated JSON does not validate against the schema: ${ajv.errorsText(validate.errors)}`);
  }
  return value;
}

/** The text a generate_regex job returns (acceptRegexOutput), or the reason it does not match. */
export function checkRegexOutput(text: string, matcher: RegexMatcher, truncated: boolean, maxTokens: number): string {
  const accepted = acceptRegexOutput(matcher, text);
  if (accepted === undefined) {
    throw incomplete(truncated, maxTokens, 'the output matched the pattern', 'the output does not match the pattern');
  }
  return accepted;
}

/** The choice a generate_choice job returns: exactly one of `choices`. */
export function checkChoiceOutput(text: string, choices: string[], truncated: boolean, maxTokens: number): string {
  if (!choices.includes(text)) {
    throw incomplete(truncated, maxTokens, 'a choice was complete', 'the output is not one of the choices');
  }
  return text;
}

/** An embedding scaled to unit L2 norm; `what` names it in the error for a zero or non-finite norm. */
export function l2Normalise(vector: readonly number[], what: string): number[] {
  let norm = 0;
  for (const x of vector) norm += x * x;
  norm = Math.sqrt(norm);
  if (!(norm > 0) || !Number.isFinite(norm)) throw new EngineError(`${what} has norm ${norm}; cannot normalise`);
  return vector.map((x) => x / norm);
}

/**
 * Plain output of a model of the `<think>` convention: a thinking block that
 * opens the output is not part of the answer. Thinking is switched off in the
 * prompt; this catches a model that thinks anyway.
 */
export function answerWithoutThinking(text: string, truncated: boolean, maxTokens: number): string {
  const split = splitThinking(text);
  if (split.unterminated) {
    throw new EngineError(
      truncated
        ? `max_tokens (${maxTokens}) reached while the model was still thinking (inside <think>)`
        : 'the model ended its output inside a thinking block (<think> without </think>)',
    );
  }
  return split.answer;
}
