#!/usr/bin/env node
// What `sluice plugin build` runs for a JavaScript or TypeScript plugin:
// bundle the plugin with this SDK (rolldown; TypeScript types are
// stripped), then make the bundle a component (componentize-js, never
// `--aot`). Takes one argument, a JSON file:
//   { entry, bundle, out, wit, world, disableFeatures }

import * as fs from 'node:fs';
import { SDK_ALIAS, importTool } from './tools.mjs';

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { rolldown } = await importTool('rolldown');
const { componentize } = await importTool('@bytecodealliance/componentize-js');

const bundle = await rolldown({
  input: job.entry,
  platform: 'neutral',
  // The contract's and WASI's interfaces: componentize-js provides them.
  external: [/^sluice:/, /^wasi:/],
  resolve: { alias: SDK_ALIAS },
  logLevel: 'warn',
});
const { output } = await bundle.generate({ format: 'esm', codeSplitting: false });
await bundle.close();
fs.writeFileSync(job.bundle, output[0].code);

const { component } = await componentize({
  sourcePath: job.bundle,
  witPath: job.wit,
  worldName: job.world,
  disableFeatures: job.disableFeatures,
});
fs.writeFileSync(job.out, component);
