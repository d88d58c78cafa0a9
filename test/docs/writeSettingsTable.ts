// Rewrites the settings table in docs/worker.md from the settings table in
// src/settings.ts: `npx tsx test/docs/writeSettingsTable.ts`.
import { writeFileSync } from 'node:fs';
import { settingsTable } from '../../src/settings.ts';
import { splitWorkerDoc, WORKER_DOC } from './settingsTableBlock.ts';

const [before, , after] = splitWorkerDoc();
writeFileSync(WORKER_DOC, `${before}\n${settingsTable()}\n${after}`);
process.stdout.write(`wrote the settings table into ${WORKER_DOC}\n`);
