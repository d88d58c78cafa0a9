// `steadytext dashboard`: a small web page over the queue (depth over time,
// throughput and p95 by function, workers, failed jobs with Retry), served by
// src/dashboard/server.ts. Runs until SIGINT/SIGTERM.
import { Command } from 'commander';
import { addSettingOptions, flagsFromOptions, resolveOne, SETTINGS, SettingsError, type SettingInputs } from '../../settings.ts';
import { databaseUrlFrom } from '../databaseUrl.ts';
import { exitCodes, fail } from '../exit.ts';

export function dashboardCommand(): Command {
  const cmd = new Command('dashboard').description('serve a web dashboard: queue depth, throughput, workers, failed jobs (with Retry)');
  // --database-url, --port, --host, --allowed-hosts and --sample-interval from the settings table (src/settings.ts).
  return addSettingOptions(cmd, 'dashboard')
    .action(async (opts: Record<string, unknown>) => {
      const inputs: SettingInputs = { flags: flagsFromOptions(opts, 'dashboard'), entry: 'dashboard' };
      let port: number, host: string, intervalMs: number, allowedHosts: string[] | undefined;
      try {
        port = resolveOne(SETTINGS.dashboardPort, inputs).value!;
        host = resolveOne(SETTINGS.dashboardHost, inputs).value!;
        intervalMs = resolveOne(SETTINGS.sampleInterval, inputs).value!;
        allowedHosts = resolveOne(SETTINGS.dashboardAllowedHosts, inputs).value;
      } catch (err) {
        if (err instanceof SettingsError) fail(err.message, exitCodes.usage);
        throw err;
      }
      const url = databaseUrlFrom(opts.databaseUrl as string | undefined);
      const { startDashboard } = await import('../../dashboard/server.ts');
      let dashboard;
      try {
        dashboard = await startDashboard({ connection: { connectionString: url }, host, port, sampleIntervalMs: intervalMs, allowedHosts });
      } catch (err) {
        fail(`could not start the dashboard: ${(err as Error).message}`, exitCodes.failure);
      }
      if (dashboard.samplerError) {
        await dashboard.close();
        fail(`cannot read the queue: ${dashboard.samplerError}`, exitCodes.connection);
      }
      process.stdout.write(`dashboard: ${dashboard.url}\n`);
      const stop = () => void dashboard.close().then(() => process.exit(exitCodes.ok));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}
