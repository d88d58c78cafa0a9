// `steadytext`: thin shell over sql/, src/worker/ and src/engine/.
import { Command } from 'commander';
import { doctorCommand } from './commands/doctor.ts';
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
program.addCommand(statusCommand());
program.addCommand(enqueueCommand());
program.addCommand(waitCommand());
program.addCommand(doctorCommand());

await program.parseAsync(process.argv);
