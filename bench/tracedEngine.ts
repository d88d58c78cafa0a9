// BENCHMARK ONLY: the real engine (loadEngine(), as the worker would load it
// itself) behind the call recorder of bench/lib/engineTrace.ts, for the
// engine scenario's opt-in trace (BENCH_ENGINE_TRACE=1). Loaded by the worker
// process through --engine-module; the bench asks for the calls recorded so
// far with the IPC message {engineCalls: true} and gets {engineCalls: [...]}.
import { loadEngine } from '../src/engine/index.ts';
import type { EngineFactory } from '../src/engine/types.ts';
import { traceEngine } from './lib/engineTrace.ts';

const tracedEngine: EngineFactory = async () => {
  const { engine, take } = traceEngine(await loadEngine());
  process.on('message', (m) => {
    if ((m as { engineCalls?: boolean } | null)?.engineCalls) process.send?.({ engineCalls: take() });
  });
  return engine;
};

export default tracedEngine;
