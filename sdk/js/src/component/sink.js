// `sluice:plugin/sink` for a plugin made by `sink(...)`.

import { integerColumns } from '../rows.js';
import { checkExport, fieldsOf, guarded, info, loadConfig, rowsOf } from './common.js';

/** The `sink` export of the component. */
export function sinkExports(plugin) {
  class Writer {
    constructor(writer, fields) {
      this.writer = writer;
      this.integers = integerColumns(fields);
      // Rows since the last commit, for a `commit` that reports none.
      this.rows = 0;
    }

    static open(config, stream, schema, task) {
      return guarded(() => {
        const fields = fieldsOf(schema);
        const writer = plugin.open(loadConfig(plugin, config), stream, fields, task);
        if (!writer || typeof writer.write !== 'function') {
          throw new TypeError('open() must return an object with a `write(rows)` method');
        }
        return new Writer(writer, fields);
      });
    }

    write(batch) {
      guarded(() => {
        const rows = rowsOf(batch, this.integers);
        this.rows += rows.length;
        this.writer.write(rows);
      });
    }

    commit() {
      return guarded(() => {
        const done = this.writer.commit?.() ?? { rows: this.rows };
        this.rows = 0;
        return {
          rows: BigInt(done.rows ?? 0),
          bytes: BigInt(done.bytes ?? 0),
          outputs: [...(done.outputs ?? [])],
        };
      });
    }

    abort() {
      this.writer.abort?.();
    }
  }

  return {
    info: () => info(plugin),
    check: checkExport(plugin),
    beginStream: (config, stream, fresh) =>
      guarded(() => {
        const parsed = loadConfig(plugin, config);
        plugin.beginStream?.(parsed, stream, fresh);
      }),
    finishStream: (config, stream) =>
      guarded(() => {
        const parsed = loadConfig(plugin, config);
        return [...(plugin.finishStream?.(parsed, stream) ?? [])];
      }),
    Writer,
  };
}
