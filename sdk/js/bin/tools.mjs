// Find the build tools (rolldown, componentize-js): in the directory
// `SLUICE_JS_TOOLS` names (where `sluice plugin build` installs them), or
// in a node_modules above the working directory (a project's own).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

function entryOf(dir) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  let main = manifest.exports?.['.'] ?? manifest.exports ?? manifest.main ?? 'index.js';
  if (typeof main === 'object') main = main.import ?? main.default;
  if (typeof main === 'object') main = main.default;
  return path.join(dir, main);
}

/** Import package `name` from the tools directory or the project. */
export async function importTool(name) {
  const starts = [process.env.SLUICE_JS_TOOLS, process.cwd()].filter(Boolean);
  for (const start of starts) {
    for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', name);
      if (fs.existsSync(path.join(candidate, 'package.json'))) return import(pathToFileURL(entryOf(candidate)).href);
      if (path.dirname(dir) === dir) break;
    }
  }
  throw new Error(`cannot find ${name}: run \`npm install\` in the project (it is a devDependency), or set SLUICE_JS_TOOLS`);
}

/** The SDK this script belongs to. */
export const SDK_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/** `@sluice/sdk` and its subpaths resolved to this SDK's files, whatever
 * the project has installed: a plugin builds against the SDK of the
 * `sluice` that runs it. The longer key comes first. */
export const SDK_ALIAS = {
  '@sluice/sdk/testing': path.join(SDK_DIR, 'src', 'testing.js'),
  '@sluice/sdk': path.join(SDK_DIR, 'src', 'index.js'),
};
