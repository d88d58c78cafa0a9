// `steadytext doctor`'s inference-server checks: for each role configured to
// a server (flags or STEADYTEXT_<ROLE>_SERVER*), is it reachable, does it list
// the model, and which job types can it serve.
import type { Check } from './doctor.ts';
import type { WorkerFlags } from '../../worker/settings.ts';

const ROLES = ['generation', 'embedding', 'reranking'] as const;

export async function serverChecks(flags: WorkerFlags = {}, env: NodeJS.ProcessEnv = process.env): Promise<Check[]> {
  const { resolveServers, SettingsError } = await import('../../worker/settings.ts');
  let servers;
  try {
    servers = resolveServers(flags, env);
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    return [{ name: 'inference servers', status: 'fail', message: err.message, fix: 'fix the --*-server flags or STEADYTEXT_*_SERVER* variables (docs/worker.md)' }];
  }
  const roles = ROLES.filter((r) => servers[r]);
  if (roles.length === 0) return [];
  const { HttpEngine, refusal, servedFunctions } = await import('../../engine/httpEngine.ts');
  const checks: Check[] = [];
  for (const role of roles) {
    const b = { ...servers[role]!, retries: 0, timeoutMs: Math.min(servers[role]!.timeoutMs, 10_000) };
    const name = `${role} server`;
    try {
      const engine = await HttpEngine.connect({ [role]: b });
      const served = servedFunctions(b.dialect, role);
      const refused = engine.refusals();
      const message = `${b.dialect} at ${b.url} serves ${engine.modelId(role)}; job types: ${served.join(', ') || 'none'}`;
      checks.push(
        refused.length === 0
          ? { name, status: 'ok', message }
          : {
              name,
              status: 'warn',
              message: `${message}; cannot serve ${refused.map((r) => r.function).join(', ')}`,
              fix: refused.map((r) => refusal(b.dialect, r.function)).filter((v, i, a) => a.indexOf(v) === i).join('; '),
            },
      );
    } catch (err) {
      checks.push({
        name,
        status: 'fail',
        message: (err as Error).message,
        fix: `start the server or fix --${role}-server / STEADYTEXT_${role.toUpperCase()}_SERVER (and its _MODEL, _DIALECT, _API_KEY)`,
      });
    }
  }
  return checks;
}
