// The commands of `steadytext`, in the order --help lists them: what --help
// says of each (its usage term and description, as the command itself
// declares them) and how to load it. main.ts loads only the command that
// runs, so `steadytext --help` imports none of them (no pg, no worker, no
// tables). test/cli/help.test.ts keeps each entry equal to its command.
import type { Command } from 'commander';

export interface CommandEntry {
  name: string;
  /** As commander lists it under "Commands:" (`Help.subcommandTerm`). */
  term: string;
  description: string;
  load(): Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'up',
    term: 'up [options]',
    description: 'start PostgreSQL (embedded unless DATABASE_URL is set), install the schema, run a worker',
    load: async () => (await import('./commands/up.ts')).upCommand(),
  },
  {
    name: 'worker',
    term: 'worker [options]',
    description: 'run the background worker: claim queued jobs, run them on the models, store results',
    load: async () => (await import('./commands/worker.ts')).workerCommand(),
  },
  {
    name: 'migrate',
    term: 'migrate [options]',
    description: 'install or upgrade the pg_steadytext schema in a database (idempotent)',
    load: async () => (await import('./commands/migrate.ts')).migrateCommand(),
  },
  {
    name: 'models',
    term: 'models',
    description: 'list or download the GGUF models the engine uses',
    load: async () => (await import('./commands/models.ts')).modelsCommand(),
  },
  {
    name: 'dashboard',
    term: 'dashboard [options]',
    description: 'serve a web dashboard: queue depth, throughput, workers, failed jobs (with Retry)',
    load: async () => (await import('./commands/dashboard.ts')).dashboardCommand(),
  },
  {
    name: 'status',
    term: 'status [options]',
    description: 'show the queue (steadytext_queue_stats) and the workers (steadytext_worker_status)',
    load: async () => (await import('./commands/status.ts')).statusCommand(),
  },
  {
    name: 'pipelines',
    term: 'pipelines [options] [name]',
    description: 'show the pipelines (steadytext_pipeline_status), one with its failed rows; pause, resume, retry, rerun',
    load: async () => (await import('./commands/pipelines.ts')).pipelinesCommand(),
  },
  {
    name: 'enqueue',
    term: 'enqueue',
    description: 'enqueue a request through the steadytext_*_async SQL functions; prints its request id',
    load: async () => (await import('./commands/enqueue.ts')).enqueueCommand(),
  },
  {
    name: 'wait',
    term: 'wait [options] <request_id...>',
    description: 'wait for requests to finish; prints "<id> <status> <result or error>" per id as each lands',
    load: async () => (await import('./commands/wait.ts')).waitCommand(),
  },
  {
    name: 'doctor',
    term: 'doctor [options]',
    description: 'check the database, the pg_steadytext schema, extensions, models and workers; says what to fix',
    load: async () => (await import('./commands/doctor.ts')).doctorCommand(),
  },
];
