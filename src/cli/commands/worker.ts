// `steadytext worker`: runs the background worker until SIGTERM/SIGINT.
// Flags > env (STEADYTEXT_WORKER_*) > GUCs (steadytext.worker_*) > defaults;
// the --db-* flags are the spec's `python -m pg_steadytext.python.worker` ones.
import { Command } from 'commander';
import { addSettingOptions, flagsFromOptions } from '../../settings.ts';
import { exitCodes, fail } from '../exit.ts';

/** The worker flags of a command's parsed options, with that command's defaults (src/settings.ts). */
export function workerFlagsFrom(opts: Record<string, unknown>, entryPoint: 'worker' | 'up') {
  return { ...flagsFromOptions(opts, entryPoint), entryPoint };
}

export function workerCommand(): Command {
  const cmd = new Command('worker').description('run the background worker: claim queued jobs, run them on the models, store results');
  // Every flag, its help and its default come from the settings table (src/settings.ts).
  return addSettingOptions(cmd, 'worker').action(async (opts: Record<string, unknown>) => {
    const { loadSettings, SettingsError, Worker } = await import('../../worker/index.ts');
    let settings;
    try {
      settings = await loadSettings(workerFlagsFrom(opts, 'worker'));
    } catch (err) {
      if (err instanceof SettingsError) fail(err.message, exitCodes.usage);
      fail(`cannot connect to the database: ${(err as Error).message}`, exitCodes.connection);
    }
    // The worker's start, metrics and stop lines are this command's output:
    // on stdout, once (not again in the log on stderr).
    const worker = new Worker({
      ...settings,
      announce: (line) => process.stdout.write(`worker ${settings.workerId} ${line}\n`),
    });
    try {
      await worker.start();
    } catch (err) {
      const e = err as { code?: string; message: string; name?: string };
      if (e.name === 'SchemaVersionError') fail(e.message, exitCodes.failure);
      if (e.code === '42P01') {
        fail(`pg_steadytext is not installed in this database (${e.message}): run \`steadytext migrate\``, exitCodes.failure);
      }
      fail(`worker failed to start: ${e.message}`, exitCodes.failure);
    }
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals > 1) {
        process.stderr.write(`steadytext: second ${sig}, exiting without releasing jobs (they will be reclaimed)\n`);
        process.exit(exitCodes.failure);
      }
      worker.stop().then(
        () => process.exit(exitCodes.ok),
        (err) => fail(`worker stop failed: ${(err as Error).message}`, exitCodes.failure),
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
