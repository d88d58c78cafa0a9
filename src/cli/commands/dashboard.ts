// `steadytext dashboard`: a small web page over the queue (depth over time,
// throughput and p95 by function, workers, failed jobs with Retry), served by
// src/dashboard/server.ts. Runs until SIGINT/SIGTERM.
import { Command } from 'commander';
import { databaseUrlFrom } from '../databaseUrl.ts';
import { exitCodes, fail } from '../exit.ts';

interface DashboardOptions {
  databaseUrl?: string;
  port: string;
  host: string;
  sampleInterval: string;
}

export function dashboardCommand(): Command {
  return new Command('dashboard')
    .description('serve a web dashboard: queue depth, throughput, workers, failed jobs (with Retry)')
    .option('--database-url <url>', 'PostgreSQL connection URL (default: $DATABASE_URL)')
    .option('--port <port>', 'HTTP port, 0 for any free one ($STEADYTEXT_DASHBOARD_PORT)', process.env.STEADYTEXT_DASHBOARD_PORT ?? '8787')
    .option('--host <address>', 'address to bind; the page can retry jobs, so keep it local unless behind auth', '127.0.0.1')
    .option('--sample-interval <seconds>', 'how often queue depth is sampled for the chart', '2')
    .action(async (opts: DashboardOptions) => {
      const url = databaseUrlFrom(opts.databaseUrl);
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port: expected a port (0-65535), got '${opts.port}'`, exitCodes.usage);
      const interval = Number(opts.sampleInterval);
      if (!(interval > 0)) fail(`--sample-interval: expected seconds > 0, got '${opts.sampleInterval}'`, exitCodes.usage);
      const { startDashboard } = await import('../../dashboard/server.ts');
      let dashboard;
      try {
        dashboard = await startDashboard({ connection: { connectionString: url }, host: opts.host, port, sampleIntervalMs: interval * 1000 });
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
