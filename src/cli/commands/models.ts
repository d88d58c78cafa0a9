// `steadytext models list`: each role's model, its source, whether it is in the
// cache dir. `steadytext models pull`: downloads what is missing (progress
// bars; src/cli/pullModels.ts, shared with `up`), or writes the tiny test set
// with --models tiny.
import { Command, Option } from 'commander';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import Table from 'cli-table3';
import type { ModelSet } from '../../engine/index.ts';
import { MODEL_ROLES, modelSource, type EngineSettings, type ModelSource } from '../../engine/modelSources.ts';
import type { ModelRole } from '../../engine/types.ts';
import { addSettingOptions, SettingsError } from '../../settings.ts';
import { tableStyle, useColor } from '../color.ts';
import { exitCodes, fail } from '../exit.ts';
import { printable } from '../printable.ts';
import { exitInterrupted, formatSize, pullModels, unreachableAdvice } from '../pullModels.ts';

interface ModelsOptions {
  models?: ModelSet;
  modelDir?: string;
}

/** --models and --model-dir, from the settings table (src/settings.ts); a bad value is a usage error. */
const withSettings = (cmd: Command) => addSettingOptions(cmd, 'models');

/** The engine's settings for these options (options > env > defaults, src/settings.ts). */
async function engineSettings(opts: ModelsOptions): Promise<EngineSettings> {
  const { resolveSettings } = await import('../../engine/index.ts');
  try {
    return resolveSettings({ models: opts.models, modelDir: opts.modelDir });
  } catch (err) {
    if (err instanceof SettingsError) fail(err.message, exitCodes.usage);
    throw err;
  }
}

/** What the hub (HF_ENDPOINT) says about a file, and whether the local copy matches it. */
interface HubCheck {
  url: string;
  size?: number;
  sha256?: string;
  error?: string;
  localSize?: number;
  localSha256?: string;
  matches?: boolean;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function hubCheck(source: ModelSource, settings: EngineSettings): Promise<HubCheck | undefined> {
  if (source.kind !== 'hf') return undefined;
  const { hubEndpoint, hubFileInfo, resolveUrl } = await import('../../engine/download.ts');
  const url = resolveUrl(hubEndpoint(settings), source.reference);
  const check: HubCheck = { url };
  try {
    const info = await hubFileInfo(url, settings, 15_000, source.reference);
    check.size = info.size;
    check.sha256 = info.sha256;
  } catch (err) {
    check.error = (err as Error).message;
  }
  if (existsSync(source.localPath)) {
    check.localSize = statSync(source.localPath).size;
    check.localSha256 = await sha256File(source.localPath);
    if (!check.error) {
      check.matches =
        (check.size === undefined || check.size === check.localSize) && (check.sha256 === undefined || check.sha256 === check.localSha256);
    }
  }
  return check;
}

async function listAction(opts: ModelsOptions & { json?: boolean; hub?: boolean }): Promise<void> {
  // The engine (node-llama-cpp) loads only when a models command runs.
  const { describeModels } = await import('../../engine/index.ts');
  const settings = await engineSettings(opts);
  const d = describeModels({ models: settings.models, modelDir: settings.modelDir });
  const hub = new Map<ModelRole, HubCheck | undefined>();
  if (opts.hub) for (const m of d.models) hub.set(m.role, await hubCheck(modelSource(m.role, settings), settings));
  if (opts.json) {
    const models = d.models.map((m) => (opts.hub ? { ...m, hub: hub.get(m.role) ?? null } : m));
    process.stdout.write(`${JSON.stringify({ ...d, models }, null, 2)}\n`);
    return;
  }
  const size = (p: string) => (existsSync(p) ? formatSize(statSync(p).size) : '-');
  const style = tableStyle(useColor());
  const table = new Table({ head: ['role', 'present', 'size', 'model id', 'source', 'path'], style });
  for (const m of d.models) table.push([m.role, m.present ? 'yes' : 'no', size(m.localPath), m.modelId, m.source, m.localPath]);
  process.stdout.write(`model set: ${d.set}   cache dir: ${d.modelDir}   threads: ${d.threads}\n${table.toString()}\n`);
  if (opts.hub) {
    const hubTable = new Table({ head: ['role', 'hub bytes', 'hub sha256', 'local file matches'], style });
    for (const m of d.models) {
      const h = hub.get(m.role);
      if (!h) hubTable.push([m.role, '-', '-', 'not a hub file']);
      else if (h.error) hubTable.push([m.role, '-', '-', h.error]);
      else hubTable.push([m.role, h.size ?? 'not given', h.sha256 ?? 'not given', h.matches === undefined ? 'no local file' : h.matches ? 'yes' : 'NO']);
    }
    process.stdout.write(`hub: ${settings.hubEndpoint}\n${hubTable.toString()}\n`);
  }
  const missing = d.models.filter((m) => !m.present);
  if (missing.length > 0) process.stdout.write(`missing: ${missing.map((m) => m.role).join(', ')}; run \`steadytext models pull\`\n`);
}

async function pullAction(opts: ModelsOptions & { role?: ModelRole[]; timeout?: string }): Promise<void> {
  const { ensureTinyModel } = await import('../../engine/tinyModels.ts');
  const settings = await engineSettings(opts);
  const roles = opts.role && opts.role.length > 0 ? opts.role : [...MODEL_ROLES];
  if (settings.models === 'tiny') {
    for (const role of roles) process.stdout.write(`${role}: ${ensureTinyModel(role, settings.modelDir)}\n`);
    return;
  }
  const timeoutMs = Number(opts.timeout ?? 60) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) fail('--timeout must be a positive number of seconds', exitCodes.usage);
  const result = await pullModels(settings, roles, {
    timeoutMs,
    say: (line) => process.stdout.write(printable(line) + '\n'),
    warn: (line) => process.stderr.write(printable(line) + '\n'),
    progressBars: process.stderr.isTTY === true,
    again: 'steadytext models pull',
  });
  if (result.interrupted) exitInterrupted(result.interrupted, 'steadytext models pull');
  if (result.unreachable) fail(unreachableAdvice(settings, result.notFetched, result.unreachable), exitCodes.failure);
  if (result.failed.length > 0) fail(`${result.failed.length} model(s) could not be downloaded`, exitCodes.failure);
}

export function modelsCommand(): Command {
  const models = new Command('models').description('list or download the GGUF models the engine uses');
  withSettings(models.command('list'))
    .description('show each role\'s model, its source and whether it is present in the cache dir')
    .option('--json', 'print JSON')
    .option('--hub', "also ask the hub (HF_ENDPOINT, default huggingface.co) for each file's size and sha256 and check present files against them")
    .action(listAction);
  withSettings(models.command('pull'))
    .description('download the missing models into the cache dir (with --models tiny: write the tiny test models)')
    .addOption(new Option('--role <role...>', 'only these roles').choices([...MODEL_ROLES]))
    .option('--timeout <seconds>', 'give up when no data arrives for this long', '60')
    .action(pullAction);
  return models;
}

// Standalone: `node --import tsx src/cli/commands/models.ts list`.
if (import.meta.url === `file://${process.argv[1]}`) {
  await new Command('steadytext').addCommand(modelsCommand()).parseAsync(['node', 'steadytext', 'models', ...process.argv.slice(2)]);
}
