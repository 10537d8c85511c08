// `sluice:plugin/source` for a plugin made by `source(...)`.

import { batches } from '../plugin.js';
import { Checkpoint, normalizePartition, normalizeStream } from '../schema.js';
import { ConfigError } from '../errors.js';
import { batchOf, checkExport, dumpState, guarded, info, loadConfig, loadState, schemaOf, dispose } from './common.js';

function findStream(plugin, config, name) {
  for (const stream of plugin.streams(config)) {
    if (stream.name === name) return normalizeStream(stream);
  }
  throw new ConfigError(`no stream \`${name}\``);
}

/** The host passes every partition's saved state as one JSON object,
 * `{"<partition id>": "<state>"}`: each state decoded as `read` gets it. */
function partitionStates(text) {
  if (text === undefined || text === null) return null;
  const states = JSON.parse(text);
  if (states === null || typeof states !== 'object' || Array.isArray(states)) return states;
  return Object.fromEntries(Object.entries(states).map(([id, s]) => [id, loadState(s)]));
}

/** The `source` export of the component. */
export function sourceExports(plugin) {
  class Reader {
    constructor(schema, events, first) {
      this.schema = schema;
      this.events = events;
      // A generator runs nothing until its first item is asked for: that
      // item is taken in `open`, so a failure before the first row (a
      // refused login) fails `reader.open`.
      this.first = first;
    }

    static open(config, partition, state) {
      return guarded(() => {
        const parsed = loadConfig(plugin, config);
        const stream = findStream(plugin, parsed, partition.stream);
        const spec = partition.spec ? JSON.parse(partition.spec) : null;
        const items = plugin.read(parsed, stream, { id: partition.id, spec }, loadState(state));
        const events = batches(items, plugin.batchRows);
        const first = events.next();
        return new Reader(schemaOf(stream.fields), events, first);
      });
    }

    next() {
      return guarded(() => {
        let step = this.first;
        this.first = null;
        step ??= this.events.next();
        if (step.done) {
          dispose(this.schema);
          return undefined;
        }
        if (step.value instanceof Checkpoint) return { tag: 'checkpoint', val: dumpState(step.value.state) };
        return { tag: 'batch', val: batchOf(this.schema, step.value) };
      });
    }
  }

  return {
    info: () => info(plugin),
    check: checkExport(plugin),
    discover: (config) =>
      guarded(() =>
        plugin.streams(loadConfig(plugin, config)).map((given) => {
          const stream = normalizeStream(given);
          const schema = schemaOf(stream.fields);
          const ipc = schema.toIpc();
          dispose(schema);
          return {
            name: stream.name,
            schema: ipc,
            primaryKey: stream.primaryKey,
            cursorFields: stream.cursorFields,
            syncModes: stream.incremental ? ['full-refresh', 'incremental'] : ['full-refresh'],
          };
        }),
      ),
    partitions: (config, stream, state) =>
      guarded(() => {
        const parsed = loadConfig(plugin, config);
        const found = findStream(plugin, parsed, stream);
        const states = partitionStates(state);
        const parts = plugin.partitions ? plugin.partitions(parsed, found, states) : [{ id: 'all', spec: null }];
        return parts.map((p) => {
          const part = normalizePartition(p);
          return { stream, id: part.id, spec: JSON.stringify(part.spec) };
        });
      }),
    Reader,
  };
}
