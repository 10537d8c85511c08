// `sluice:plugin/filter` for a plugin made by `filter(...)` (row-wise: no
// plan, so the host hands it whole batches).

import { openTransform, processRows } from '../plugin.js';
import { integerColumns } from '../rows.js';
import { batchOf, fieldsOf, guarded, info, loadConfig, rowsOf, schemaOf } from './common.js';

/** The `filter` export of the component. */
export function filterExports(plugin) {
  class Transformer {
    constructor(transform, schema, fields) {
      this.transform = transform;
      this.schema = schema;
      this.integers = integerColumns(fields);
    }

    static open(config, inputSchema) {
      return guarded(() => {
        const parsed = loadConfig(plugin, config);
        const fields = fieldsOf(inputSchema);
        const output = plugin.outputFields ? plugin.outputFields(parsed, fields) : fields;
        const transform = openTransform(plugin, parsed, fields);
        return new Transformer(transform, schemaOf(output), fields);
      });
    }

    outputSchema() {
      return this.schema.toIpc();
    }

    plan() {
      return undefined;
    }

    keep() {
      return guarded(() => {
        throw new Error('a row-wise filter has no keep');
      });
    }

    compute() {
      return guarded(() => {
        throw new Error('a row-wise filter has no compute');
      });
    }

    out(rows) {
      return rows.length ? [batchOf(this.schema, rows)] : [];
    }

    process(batch) {
      return guarded(() => this.out(processRows(this.transform, rowsOf(batch, this.integers))));
    }

    finish() {
      return guarded(() => this.out(this.transform.finish?.() ?? []));
    }
  }

  return { info: () => info(plugin), Transformer };
}
