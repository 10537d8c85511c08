// What a plugin says about its data, without Arrow.
//
// Column types are named as a job's `columns:` names them: `int64`,
// `float64`, `string`, `bool`, `date`, `timestamp` (no zone),
// `timestamptz`, `decimal(15,2)`, `binary`, and Arrow's own syntax for the
// rest. The host turns them into an Arrow schema.

import { DataError } from './errors.js';

/** One column: `field('id', 'int64', { nullable: false })`. */
export function field(name, type, options = {}) {
  return {
    name,
    type,
    nullable: options.nullable ?? true,
    metadata: { ...(options.metadata ?? {}) },
  };
}

/** Yielded by a reader: `state` (any JSON value) covers every row before
 * it, and comes back to `read` in the next run once the sink committed
 * those rows. */
export class Checkpoint {
  constructor(state) {
    this.state = state;
  }
}

/** A checkpoint of `state` (see `Checkpoint`). */
export function checkpoint(state) {
  return new Checkpoint(state);
}

/** Rows given as columns (equal-length arrays), for a reader to yield. */
export class Columns {
  constructor(columns) {
    this.columns = columns;
  }

  /** The rows, as objects keyed by column name. */
  rows() {
    const names = Object.keys(this.columns);
    const arrays = names.map((n) => this.columns[n]);
    const lengths = new Set(arrays.map((a) => a.length));
    if (lengths.size > 1) {
      throw new DataError(`columns of different lengths: ${[...lengths].sort((a, b) => a - b).join(', ')}`);
    }
    const count = arrays.length ? arrays[0].length : 0;
    const make = rowMaker(names);
    const out = new Array(count);
    for (let i = 0; i < count; i++) out[i] = make(arrays, i);
    return out;
  }
}

const makers = new Map();

/** A function building one row from column arrays: an object literal with
 * the names written out, so every row gets one shape at once instead of
 * growing one key at a time (10× faster in the component's interpreter).
 * Falls back to a loop where `Function` is not allowed. */
function rowMaker(names) {
  const key = names.join('\u0000');
  let make = makers.get(key);
  if (make) return make;
  try {
    // A computed key for `__proto__`, which as a plain key sets the prototype.
    const body = names.map((n, k) => `${n === '__proto__' ? '["__proto__"]' : JSON.stringify(n)}: c[${k}][i]`).join(', ');
    make = new Function('c', 'i', `return { ${body} };`);
  } catch {
    make = (c, i) => {
      const row = {};
      for (let k = 0; k < names.length; k++) {
        Object.defineProperty(row, names[k], { value: c[k][i], enumerable: true, writable: true, configurable: true });
      }
      return row;
    };
  }
  makers.set(key, make);
  return make;
}

/** Rows as columns: `columns({ id: [1, 2], name: ['a', 'b'] })`. */
export function columns(cols) {
  return new Columns(cols);
}

/** A stream with its defaults filled in, checked. */
export function normalizeStream(stream) {
  if (!stream || typeof stream.name !== 'string' || !Array.isArray(stream.fields)) {
    throw new TypeError('streams() must return objects with a `name` and `fields`');
  }
  return {
    name: stream.name,
    fields: stream.fields.map((f) => field(f.name, f.type, f)),
    primaryKey: [...(stream.primaryKey ?? [])],
    cursorFields: [...(stream.cursorFields ?? [])],
    incremental: Boolean(stream.incremental),
  };
}

/** A partition with its defaults filled in. */
export function normalizePartition(partition) {
  return { id: partition?.id ?? 'all', spec: partition?.spec ?? null };
}
