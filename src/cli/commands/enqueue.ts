// `steadytext enqueue <type> ...`: any job from the shell, through the SQL
// enqueue functions (every check is theirs: a rejected argument prints
// PostgreSQL's message and exits 1). Prints the request id.
import { Command } from 'commander';
import pg from 'pg';
import { databaseUrlFrom } from '../databaseUrl.ts';
import { failWith } from '../exit.ts';
import { printable, printableJson } from '../printable.ts';

interface CommonOptions {
  databaseUrl?: string;
  json?: boolean;
  priority?: string;
  cache: boolean;
}

interface GenerateOptions extends CommonOptions {
  maxTokens?: string;
  seed?: string;
}

type SqlArg = [name: string, value: unknown, type: string];

/** Options are passed to SQL as text with a cast, so a bad number is PostgreSQL's error too. */
const common = (o: CommonOptions): SqlArg[] => [
  ['use_cache', o.cache === false ? 'false' : undefined, 'boolean'],
  ['priority', o.priority, 'integer'],
];
const generation = (o: GenerateOptions): SqlArg[] => [
  ['max_tokens', o.maxTokens, 'integer'],
  ['seed', o.seed, 'integer'],
  ...common(o),
];

function jobCommand(name: string, description: string, withGeneration: boolean): Command {
  const cmd = new Command(name)
    .description(description)
    .option('--database-url <url>', 'PostgreSQL connection URL (default: $DATABASE_URL)')
    .option('--priority <n>', 'higher runs first (default 0)')
    .option('--no-cache', 'use_cache := false: neither serve from nor fill the cache')
    .option('--json', 'print {"request_id": ...} (batches: {"request_ids": [...]})');
  if (withGeneration) {
    cmd.option('--max-tokens <n>', 'max_tokens (default 512)').option('--seed <n>', 'seed (default 42)');
  }
  return cmd;
}

export function enqueueCommand(): Command {
  const enqueue = new Command('enqueue')
    .description('enqueue a request through the steadytext_*_async SQL functions; prints its request id')
    .addHelpText(
      'after',
      `
Examples:
  steadytext enqueue generate "Write a haiku" --max-tokens 50 --seed 1 --priority 2
  steadytext enqueue embed "some text"
  steadytext enqueue json "A person" --schema '{"type":"object","properties":{"name":{"type":"string"}}}'
  steadytext enqueue regex "Call me at" --pattern '\\d{3}-\\d{4}'
  steadytext enqueue choice "Is this positive?" --choices yes,no
  steadytext enqueue rerank "query" "doc one" "doc two" --task "..."
  steadytext wait $(steadytext enqueue generate "hello")`,
    );

  enqueue.addCommand(
    jobCommand('generate', 'steadytext_generate_async(prompt, ...)', true)
      .argument('<prompt>')
      .action((prompt: string, o: GenerateOptions) =>
        run(o, 'steadytext_generate_async', [['prompt', prompt, 'text'], ...generation(o)])),
  );
  enqueue.addCommand(
    jobCommand('embed', 'steadytext_embed_async(text_input, ...)', false)
      .argument('<text>')
      .action((text: string, o: CommonOptions) => run(o, 'steadytext_embed_async', [['text_input', text, 'text'], ...common(o)])),
  );
  enqueue.addCommand(
    jobCommand('json', 'steadytext_generate_json_async(prompt, schema, ...)', true)
      .argument('<prompt>')
      .requiredOption('--schema <json>', 'the JSON schema the result must match')
      .action((prompt: string, o: GenerateOptions & { schema: string }) =>
        run(o, 'steadytext_generate_json_async', [['prompt', prompt, 'text'], ['schema', o.schema, 'jsonb'], ...generation(o)])),
  );
  enqueue.addCommand(
    jobCommand('regex', 'steadytext_generate_regex_async(prompt, pattern, ...)', true)
      .argument('<prompt>')
      .requiredOption('--pattern <regex>', 'the pattern the whole result must match')
      .action((prompt: string, o: GenerateOptions & { pattern: string }) =>
        run(o, 'steadytext_generate_regex_async', [['prompt', prompt, 'text'], ['pattern', o.pattern, 'text'], ...generation(o)])),
  );
  enqueue.addCommand(
    jobCommand('choice', 'steadytext_generate_choice_async(prompt, choices, ...)', true)
      .argument('<prompt>')
      .requiredOption('--choices <list>', 'comma-separated choices, e.g. yes,no,maybe')
      .action((prompt: string, o: GenerateOptions & { choices: string }) =>
        run(o, 'steadytext_generate_choice_async', [['prompt', prompt, 'text'], ['choices', o.choices.split(','), 'text[]'], ...generation(o)])),
  );
  enqueue.addCommand(
    jobCommand('rerank', 'steadytext_rerank_async(query, documents, task, ...)', false)
      .argument('<query>')
      .argument('<documents...>')
      .option('--task <text>', 'instruction for the reranker (default: the web-search one)')
      .option('--seed <n>', 'seed (default 42)')
      .action((query: string, documents: string[], o: CommonOptions & { task?: string; seed?: string }) =>
        run(o, 'steadytext_rerank_async', [
          ['query', query, 'text'],
          ['documents', documents, 'text[]'],
          ['task', o.task, 'text'],
          ...common(o),
          ['seed', o.seed, 'integer'],
        ])),
  );
  enqueue.addCommand(
    jobCommand('generate-batch', 'steadytext_generate_batch_async(prompts, ...): one id per prompt, one per line', true)
      .argument('<prompts...>')
      .action((prompts: string[], o: GenerateOptions) =>
        run(o, 'steadytext_generate_batch_async', [['prompts', prompts, 'text[]'], ...generation(o)])),
  );
  enqueue.addCommand(
    jobCommand('embed-batch', 'steadytext_embed_batch_async(texts, ...): one id per text, one per line', false)
      .argument('<texts...>')
      .action((texts: string[], o: CommonOptions) => run(o, 'steadytext_embed_batch_async', [['texts', texts, 'text[]'], ...common(o)])),
  );
  return enqueue;
}

async function run(o: CommonOptions, fn: string, args: SqlArg[]): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrlFrom(o.databaseUrl) });
  try {
    await client.connect();
  } catch (err) {
    failWith(err);
  }
  let value: string | string[];
  try {
    const given = args.filter(([, v]) => v !== undefined);
    const list = given.map(([name, , type], i) => `${name} => $${i + 1}::${type}`).join(', ');
    const r = await client.query<{ v: string | string[] }>(`SELECT ${fn}(${list}) AS v`, given.map(([, v]) => v));
    value = r.rows[0].v;
  } catch (err) {
    failWith(err, /^steadytext_/.test((err as Error).message) ? undefined : fn);
  } finally {
    await client.end().catch(() => {});
  }
  if (Array.isArray(value)) {
    process.stdout.write(o.json ? printableJson({ request_ids: value }) + '\n' : value.map((id) => printable(id) + '\n').join(''));
  } else {
    process.stdout.write(o.json ? printableJson({ request_id: value }) + '\n' : printable(value) + '\n');
  }
}
