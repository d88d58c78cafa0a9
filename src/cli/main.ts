// `steadytext`: thin shell over sql/, src/worker/ and src/engine/.
import { Command, CommanderError } from 'commander';
import { dashboardCommand } from './commands/dashboard.ts';
import { doctorCommand } from './commands/doctor.ts';
import { exitCodes } from './exit.ts';
import { enqueueCommand } from './commands/enqueue.ts';
import { migrateCommand } from './commands/migrate.ts';
import { modelsCommand } from './commands/models.ts';
import { statusCommand } from './commands/status.ts';
import { upCommand } from './commands/up.ts';
import { waitCommand } from './commands/wait.ts';
import { workerCommand } from './commands/worker.ts';
import { packageVersion } from './version.ts';

const program = new Command('steadytext')
  .description('Deterministic AI from PostgreSQL: queue, worker and models for pg_steadytext')
  .version(packageVersion())
  .showHelpAfterError();

program.addCommand(upCommand());
program.addCommand(workerCommand());
program.addCommand(migrateCommand());
program.addCommand(modelsCommand());
program.addCommand(dashboardCommand());
program.addCommand(statusCommand());
program.addCommand(enqueueCommand());
program.addCommand(waitCommand());
program.addCommand(doctorCommand());

// Usage errors (unknown flag, missing argument) exit 2, as docs/cli.md says;
// commander alone would exit 1. exitOverride is not inherited through addCommand.
const overrideExit = (cmd: Command): void => {
  cmd.exitOverride();
  cmd.commands.forEach(overrideExit);
};
overrideExit(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // --help and --version exit 0; everything else commander rejects is a usage error.
  process.exit(err.exitCode === 0 ? 0 : exitCodes.usage);
}
