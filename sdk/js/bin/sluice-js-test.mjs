#!/usr/bin/env node
// Run a plugin project's native tests (`*.test.ts`, `*.test.js`,
// `*.test.mjs`): each is bundled with this SDK by rolldown (so TypeScript
// runs on any Node) into target/sluice/tests/, then `node --test` runs them.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SDK_ALIAS, importTool } from './tools.mjs';

const root = path.resolve(process.argv[2] ?? '.');
const tests = [];
const walk = (dir) => {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules' || entry.name === 'target') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (/\.test\.(ts|mts|js|mjs)$/.test(entry.name)) tests.push(full);
  }
};
walk(root);
if (!tests.length) {
  console.error(`no *.test.ts or *.test.js files under ${root}`);
  process.exit(1);
}

const { rolldown } = await importTool('rolldown');
const out = path.join(root, 'target', 'sluice', 'tests');
fs.mkdirSync(out, { recursive: true });
const built = [];
for (const test of tests) {
  const bundle = await rolldown({
    input: test,
    platform: 'node',
    resolve: { alias: SDK_ALIAS },
    logLevel: 'warn',
  });
  const file = path.join(out, path.relative(root, test).replaceAll(path.sep, '__').replace(/\.(ts|mts|js)$/, '.mjs'));
  const { output } = await bundle.generate({ format: 'esm', codeSplitting: false });
  await bundle.close();
  fs.writeFileSync(file, output[0].code);
  built.push(file);
}
const run = spawnSync(process.execPath, ['--test', ...built], { stdio: 'inherit', cwd: root });
process.exit(run.status ?? 1);
