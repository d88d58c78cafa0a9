// `steadytext`: thin shell over sql/, src/worker/ and src/engine/.
// Only the command that runs is loaded (commandTable.ts): the others are
// listed by name and description, so `steadytext --help` or `steadytext
// status` does not import the worker, the dashboard or the models' code.
import { Command, CommanderError, Help } from 'commander';
import { COMMANDS } from './commandTable.ts';
import { exitCodes } from './exit.ts';
import { packageVersion } from './version.ts';

const program = new Command('steadytext')
  .description('Deterministic AI from PostgreSQL: queue, worker and models for pg_steadytext')
  .version(packageVersion())
  .showHelpAfterError();

// The command named on the command line (`steadytext help <command>` too).
// The program's own flags (--help, --version) take no value, so the first
// word that is not a flag is the command.
const args = process.argv.slice(2);
const first = args.findIndex((a) => !a.startsWith('-'));
const named = args[first] === 'help' ? args[first + 1] : args[first];

const terms = new Map(COMMANDS.map((c) => [c.name, c.term]));
const help = new Help();
program.configureHelp({ subcommandTerm: (cmd) => terms.get(cmd.name()) ?? help.subcommandTerm(cmd) });
for (const c of COMMANDS) {
  program.addCommand(c.name === named ? await c.load() : new Command(c.name).description(c.description));
}

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
