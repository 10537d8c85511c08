// The component side of the SDK: bundled only into the wasm build, where
// componentize-js provides the contract's interfaces as modules.
//
// Every call from the host runs under `guarded`, so a throw becomes a
// typed WIT error instead of a trap, with the JavaScript stack in its
// message.

import { Batch, Schema } from 'sluice:plugin/types@0.2.0';
import * as config from '../config.js';
import { SluiceError, callHost } from '../errors.js';
import { decode, encode } from '../rows.js';
import './host.js';

/** The error value componentize-js lifts into a WIT `error`: it reads the
 * thrown value's `payload` when there is one. */
function witError(kind, message) {
  const error = new Error(message);
  error.payload = { kind, message };
  return error;
}

/** Run `body`; a throw becomes a WIT error result. */
export function guarded(body) {
  try {
    return body();
  } catch (e) {
    if (e instanceof SluiceError) throw witError(e.kind, e.message);
    if (e?.payload && typeof e.payload.kind === 'string') throw e; // already a WIT error
    // The host names the plugin and the call; this says what was thrown.
    const said = e instanceof Error ? `${e.name}: ${e.message}` : `a ${typeof e} was thrown: ${String(e)}`;
    const stack = e instanceof Error && e.stack ? `\n${e.stack.trimEnd()}` : '';
    throw witError('internal', `${said}${stack}`);
  }
}

/** Drop a host resource now rather than when the garbage collector runs. */
export function dispose(resource) {
  resource?.[Symbol.dispose ?? Symbol.for('dispose')]?.();
}

/** `info()` for any kind. */
export function info(plugin) {
  return {
    name: plugin.name,
    version: plugin.version,
    kind: plugin.kind,
    description: plugin.description,
    configSchema: JSON.stringify(config.pluginSchema(plugin)),
    capabilities: [...plugin.capabilities],
  };
}

export function loadConfig(plugin, text) {
  return config.load(plugin.config, text);
}

/** A host schema for `fields`. */
export function schemaOf(fields) {
  return callHost(() =>
    Schema.fromFields(
      fields.map((f) => ({
        name: f.name,
        type: f.type,
        nullable: f.nullable,
        metadata: Object.entries(f.metadata ?? {}),
      })),
    ),
  );
}

/** The columns of a schema the host passed as IPC. */
export function fieldsOf(ipc) {
  const schema = callHost(() => Schema.fromIpc(ipc));
  try {
    return schema.fields().map((f) => ({
      name: f.name,
      type: f.type,
      nullable: f.nullable,
      metadata: Object.fromEntries(f.metadata),
    }));
  } finally {
    dispose(schema);
  }
}

// Batches cross as UTF-8 bytes, not as a `string`: componentize-js
// lowers a string about 300× slower than a byte list (see
// `batch.from-json-bytes` in the contract).
const utf8 = new TextEncoder();
const text = new TextDecoder();

/** A host batch holding `rows`. */
export function batchOf(schema, rows) {
  const bytes = utf8.encode(encode(rows));
  return callHost(() => Batch.fromJsonBytes(schema, bytes));
}

/** The rows of a batch the host passed (its handle dropped);
 * `integers` names its columns that may hold integers beyond 2^53
 * (`integerColumns` of its fields, found once a task). */
export function rowsOf(batch, integers) {
  try {
    return decode(text.decode(callHost(() => batch.toJsonBytes())), integers);
  } finally {
    dispose(batch);
  }
}

/** Saved state as the host keeps it: JSON text. */
export const dumpState = (state) => JSON.stringify(state ?? null);

/** Saved state as `read` gets it (text that is not JSON as it is). */
export function loadState(text) {
  if (text === undefined || text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `check` of a source or a sink. The config is parsed even when the
 * plugin has no `check`: a bad one is a config error either way. */
export function checkExport(plugin) {
  return (config) =>
    guarded(() => {
      const parsed = loadConfig(plugin, config);
      plugin.check?.(parsed);
    });
}
