// A TEST DOUBLE of the Engine for queue-mechanics tests, loaded through
// STEADYTEXT_ENGINE_MODULE (or the worker's engineModule setting). No model:
// the job's prompt (or text) is a script telling the engine what to do.
//
//   'sleep:<ms>'        waits <ms> (aborts early on the signal), then answers
//   'throw:<message>'   throws Error(<message>)
//   'bad-input:<msg>'   throws EngineInputError(<msg>) (not worth retrying)
//   'hang'              waits until the signal aborts, then throws EngineAbortedError
//   'deaf:<ms>'         waits <ms> ignoring the signal, then answers (a late result)
//   'fail-while-file:<path>'  throws Error('file <path> exists') while <path> exists,
//                       answers once it is gone (a test fixes the cause, then retries)
//   'wait-for-file:<path>'  waits until <path> exists (aborts early on the signal),
//                       then answers: a gate the test opens when it has seen what it asserts
//   'progress:<from>-<to>'  reports output (onProgress) every 20 ms from <from> ms
//                       until <to> ms (no <to>: for ever), silent outside; answers
//                       only when the signal aborts (a job whose own output outlasts
//                       its timeout, or an engine that stalls)
//   'refuse:<anything>' (embed, any text of the call) refuses the whole call with
//                       EngineInputError naming that text, as a server answers 400
//                       to a request holding one input it cannot take
//   anything else       answers at once
//
// Answers are deterministic: generate → `echo:<prompt>`, generate_json →
// {"echo": prompt}, generate_regex → `regex:<pattern>:<prompt>`, generate_choice
// → the choice at (prompt length mod choices), embed → a unit vector from the
// text's bytes, rerank → documents scored by words shared with the query.
//
// `events` records every call in this process, so an in-process test can see
// what the worker asked for (e.g. that a cancel reached the engine's signal).
import { existsSync } from 'node:fs';
import { EngineAbortedError, EngineInputError, type Engine, type ModelRole } from '../../src/engine/types.ts';
import type { RankedDocument } from '../../src/interfaces.ts';

export interface ScriptedEvent {
  call: 'generate' | 'generateJson' | 'generateRegex' | 'generateChoice' | 'embed' | 'rerank';
  inputs: string[];
  /** When the call started (ms since epoch). */
  at?: number;
  outcome?: 'ok' | 'aborted' | 'threw';
  /** When the engine saw the signal abort (ms since epoch). */
  abortedAt?: number;
}

export const events: ScriptedEvent[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function abortable(ms: number, signal: AbortSignal | undefined, ev: ScriptedEvent): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      ev.abortedAt = Date.now();
      reject(new EngineAbortedError(`aborted: ${String(signal?.reason ?? 'abort')}`));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Reports output every 20 ms between `from` and `to` ms after the start (no `to`: for ever) until the signal aborts. */
async function progress(from: number, to: number | undefined, signal: AbortSignal | undefined, onProgress: (() => void) | undefined, ev: ScriptedEvent): Promise<void> {
  const start = Date.now();
  for (;;) {
    await abortable(20, signal, ev);
    const t = Date.now() - start;
    if (t >= from && (to === undefined || t <= to)) onProgress?.();
  }
}

/** Acts out the script in `input`; resolves when the answer may be given. */
async function act(input: string, signal: AbortSignal | undefined, ev: ScriptedEvent, onProgress?: () => void): Promise<void> {
  ev.at = Date.now();
  events.push(ev);
  try {
    let m: RegExpExecArray | null;
    if ((m = /^sleep:(\d+)/.exec(input))) await abortable(Number(m[1]), signal, ev);
    else if ((m = /^progress:(\d+)-(\d*)/.exec(input))) await progress(Number(m[1]), m[2] ? Number(m[2]) : undefined, signal, onProgress, ev);
    else if ((m = /^deaf:(\d+)/.exec(input))) {
      signal?.addEventListener('abort', () => (ev.abortedAt = Date.now()), { once: true });
      await sleep(Number(m[1]));
    } else if (input.startsWith('throw:')) throw new Error(input.slice('throw:'.length));
    else if (input.startsWith('fail-while-file:')) {
      const file = input.slice('fail-while-file:'.length);
      if (existsSync(file)) throw new Error(`file ${file} exists`);
    } else if (input.startsWith('wait-for-file:')) {
      const file = input.slice('wait-for-file:'.length);
      while (!existsSync(file)) await abortable(20, signal, ev);
    } else if (input.startsWith('bad-input:')) throw new EngineInputError(input.slice('bad-input:'.length));
    else if (input === 'hang') await abortable(2 ** 31 - 1, signal, ev);
    ev.outcome = 'ok';
  } catch (err) {
    ev.outcome = err instanceof EngineAbortedError ? 'aborted' : 'threw';
    throw err;
  }
}

/** The vector the scripted engine gives `text` (a test recomputes what a row must hold without the engine's scripts running). */
export function vectorFor(text: string): number[] {
  const v = [1, 0, 0, 0];
  for (let i = 0; i < text.length; i++) v[i % 4] += text.charCodeAt(i) % 17;
  const norm = Math.hypot(...v);
  return v.map((x) => Math.round((x / norm) * 1e6) / 1e6);
}

export function createScriptedEngine(): Engine {
  return {
    modelId: (role: ModelRole) => `scripted-${role}`,
    async generate(prompt, opts) {
      await act(prompt, opts.signal, { call: 'generate', inputs: [prompt] }, opts.onProgress);
      return `echo:${prompt}`;
    },
    async generateJson(prompt, _schema, opts) {
      await act(prompt, opts.signal, { call: 'generateJson', inputs: [prompt] });
      return { echo: prompt };
    },
    async generateRegex(prompt, pattern, opts) {
      await act(prompt, opts.signal, { call: 'generateRegex', inputs: [prompt] });
      return `regex:${pattern}:${prompt}`;
    },
    async generateChoice(prompt, choices, opts) {
      await act(prompt, opts.signal, { call: 'generateChoice', inputs: [prompt] });
      return choices[prompt.length % choices.length];
    },
    async embed(texts, opts) {
      // One event for the whole call: tests count calls to see batching.
      const refused = texts.find((t) => t.startsWith('refuse:'));
      if (refused !== undefined) {
        events.push({ call: 'embed', inputs: texts, at: Date.now(), outcome: 'threw' });
        throw new EngineInputError(`the engine refuses the text ${JSON.stringify(refused)}`);
      }
      await act(texts[0] ?? '', opts?.signal, { call: 'embed', inputs: texts });
      return texts.map(vectorFor);
    },
    async rerank(query, documents, _task, opts) {
      await act(query, opts?.signal, { call: 'rerank', inputs: [query, ...documents] });
      const words = new Set(query.toLowerCase().split(/\W+/).filter(Boolean));
      const ranked: RankedDocument[] = documents.map((document, index) => ({
        document,
        index,
        score: document.toLowerCase().split(/\W+/).filter((w) => words.has(w)).length,
      }));
      return ranked.sort((a, b) => b.score - a.score || a.index - b.index);
    },
    async dispose() {},
  };
}

/** The EngineFactory STEADYTEXT_ENGINE_MODULE expects. */
export default async function scriptedEngineFactory(): Promise<Engine> {
  return createScriptedEngine();
}
