// Checks shared by every engine (local and inference servers): the options a
// generation takes, and the validator every JSON result passes, so that a
// result is checked the same way wherever it was generated.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { linearRegExp } from './regexGrammar.ts';
import { EngineInputError, type GenerateOptions } from './types.ts';

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

/** ajv's message for the last failed validation. */
export function schemaErrors(validate: ValidateFunction): string {
  return ajv.errorsText(validate.errors);
}
