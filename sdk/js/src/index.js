// Write Sluice connectors in JavaScript or TypeScript.
//
// Describe a plugin with `source`, `filter` or `sink` and make it the
// module's default export; `sluice plugin build` bundles the module with
// this SDK (rolldown) and turns it into a WebAssembly component
// (componentize-js). It then runs sandboxed, reaching only what a job
// grants.
//
//   import { source, field } from '@sluice/sdk';
//
//   export default source({
//     name: 'counter',
//     streams: () => [{ name: 'numbers', fields: [field('n', 'int64', { nullable: false })] }],
//     *read(config) {
//       for (let n = 0; n < 10; n++) yield { n };
//     },
//   });

export * as config from './config.js';
export * as blob from './blob.js';
export * as http from './http.js';
export * as log from './log.js';
export { AuthError, ConfigError, DataError, InternalError, SluiceError, TransientError } from './errors.js';
export { filter, sink, source } from './plugin.js';
export { Checkpoint, Columns, checkpoint, columns, field } from './schema.js';

/** The contract this SDK builds against. */
export const WIT_VERSION = '0.2.0';
