// Inference-server settings: flags > env > defaults, one resolver
// (src/worker/settings.ts), API keys from env or a file and never in a message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveServers, resolveSettings, SettingsError } from '../../src/worker/settings.ts';
import { HttpClient } from '../../src/engine/httpClient.ts';
import { refusal, servedFunctions } from '../../src/engine/httpEngine.ts';
import { freePort } from '../helpers/freePort.ts';

test('no server configured: every role stays local', () => {
  assert.deepEqual(resolveServers({}, {}), {});
  assert.deepEqual(resolveSettings({ databaseUrl: 'postgres://x/y' }, {}, {}).servers, {});
});

test('per role URL, dialect and model; shared limits; flags win over env', () => {
  const env = {
    STEADYTEXT_EMBEDDING_SERVER: 'http://gpu-1:8080/',
    STEADYTEXT_EMBEDDING_SERVER_DIALECT: 'tei',
    STEADYTEXT_GENERATION_SERVER: 'http://env-host:8000',
    STEADYTEXT_GENERATION_SERVER_DIALECT: 'ollama',
    STEADYTEXT_SERVER_TIMEOUT: '30',
    STEADYTEXT_SERVER_MAX_IN_FLIGHT: '8',
  };
  const s = resolveServers(
    { generationServer: 'http://flag-host:8000', generationServerDialect: 'openai', generationServerModel: 'Qwen/Qwen3-4B', serverRetries: '5', serverEmbedBatchSize: '16' },
    env,
  );
  assert.deepEqual(s.generation, {
    url: 'http://flag-host:8000',
    dialect: 'openai',
    model: 'Qwen/Qwen3-4B',
    apiKey: undefined,
    timeoutMs: 30_000,
    maxInFlight: 8,
    retries: 5,
    retryBackoffMs: 500,
    embedBatchSize: 16,
  });
  assert.equal(s.embedding?.url, 'http://gpu-1:8080');
  assert.equal(s.embedding?.dialect, 'tei');
  assert.equal(s.reranking, undefined);
  assert.equal(resolveServers({ rerankingServer: 'http://h:1' }, {}).reranking?.dialect, 'llama-server', 'the default dialect');
});

test('the API key comes from env or a file, and no error or setting text shows it', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'st-key-'));
  const file = path.join(dir, 'key');
  writeFileSync(file, 'sk-from-file\n');
  assert.equal(resolveServers({}, { STEADYTEXT_EMBEDDING_SERVER: 'http://h:1', STEADYTEXT_EMBEDDING_SERVER_API_KEY: 'sk-env' }).embedding?.apiKey, 'sk-env');
  assert.equal(
    resolveServers({ embeddingServer: 'http://h:1', embeddingServerApiKeyFile: file }, { STEADYTEXT_EMBEDDING_SERVER_API_KEY: 'sk-env' }).embedding?.apiKey,
    'sk-from-file',
  );
  assert.throws(
    () => resolveServers({ embeddingServer: 'http://h:1', embeddingServerApiKeyFile: path.join(dir, 'missing') }, {}),
    /--embedding-server-api-key-file: cannot read the API key file: ENOENT/,
  );
  assert.throws(() => resolveServers({ embeddingServer: 'http://user:sk-secret@h:1' }, {}), (err: Error) => {
    assert.ok(err instanceof SettingsError);
    assert.doesNotMatch(err.message, /sk-secret/);
    return /put no credentials in the URL/.test(err.message);
  });
});

test('bad values name the setting; dialects that cannot serve a role are refused at start', () => {
  assert.throws(() => resolveServers({ generationServer: 'gpu-1:8080x' }, {}), /--generation-server: expected an http\(s\) URL/);
  assert.throws(() => resolveServers({}, { STEADYTEXT_GENERATION_SERVER: 'ftp://h' }), /STEADYTEXT_GENERATION_SERVER: expected an http\(s\) URL/);
  assert.throws(() => resolveServers({ generationServer: 'http://h:1', generationServerDialect: 'sglang' }, {}), /--generation-server-dialect: expected one of llama-server, openai, ollama, tei/);
  assert.throws(() => resolveServers({ generationServer: 'http://h:1', generationServerDialect: 'tei' }, {}), /tei .* cannot serve generation/);
  assert.throws(() => resolveServers({ rerankingServer: 'http://h:1', rerankingServerDialect: 'ollama' }, {}), /Ollama has no rerank endpoint/);
  assert.throws(() => resolveServers({ embeddingServer: 'http://h:1', serverMaxInFlight: '0' }, {}), /--server-max-in-flight: must be at least 1/);
  assert.throws(() => resolveServers({ embeddingServer: 'http://h:1' }, { STEADYTEXT_SERVER_TIMEOUT: 'soon' }), /STEADYTEXT_SERVER_TIMEOUT: expected a duration/);
});

test('what each dialect serves, and why not', () => {
  assert.deepEqual(servedFunctions('llama-server', 'generation'), ['generate', 'generate_json', 'generate_regex', 'generate_choice']);
  assert.deepEqual(servedFunctions('ollama', 'generation'), ['generate', 'generate_json']);
  assert.match(refusal('ollama', 'generate_regex')!, /accepts only a JSON schema/);
  assert.deepEqual(servedFunctions('tei', 'generation'), []);
  assert.deepEqual(servedFunctions('tei', 'reranking'), ['rerank']);
});

test('a server that is not there: the connection error after every retry, the key in no message', async () => {
  const url = `http://127.0.0.1:${await freePort()}`; // nothing listens there
  const c = new HttpClient({ url, apiKey: 'sk-secret', timeoutMs: 2000, maxInFlight: 1, retries: 1, retryBackoffMs: 10, label: `llama-server at ${url}` });
  await assert.rejects(c.json('GET', '/v1/models'), (err: Error) => {
    assert.equal(err.message, `llama-server at ${url} GET /v1/models: connection failed: ECONNREFUSED (after 2 attempts)`);
    assert.doesNotMatch(err.message, /sk-secret/);
    return true;
  });
});

test('doctor: a configured server that is not there fails its check, saying what to fix', async () => {
  const { serverChecks } = await import('../../src/cli/commands/doctorServers.ts');
  assert.deepEqual(await serverChecks({}, {}), [], 'no server configured: no check');
  const url = `http://127.0.0.1:${await freePort()}`;
  const [check] = await serverChecks({ embeddingServer: url }, {});
  assert.equal(check.name, 'embedding server');
  assert.equal(check.status, 'fail');
  assert.match(check.message, /connection failed: ECONNREFUSED/);
  assert.match(check.fix!, /--embedding-server/);
  const [bad] = await serverChecks({}, { STEADYTEXT_RERANKING_SERVER: 'http://h:1', STEADYTEXT_RERANKING_SERVER_DIALECT: 'ollama' });
  assert.equal(bad.status, 'fail');
  assert.match(bad.message, /Ollama has no rerank endpoint/);
});
