// The three kinds of plugin: describe one with `source`, `filter` or
// `sink` and make it the module's default export.
//
// Every method gets the config already checked and filled in from the
// plugin's `config` description. Throw `ConfigError`, `AuthError`,
// `TransientError` or `DataError` to fail a call with that kind; anything
// else thrown fails it as an internal error with the stack in the message.

import { DataError } from './errors.js';
import { Checkpoint, Columns } from './schema.js';

const NAME = /^[a-z0-9][a-z0-9_-]*$/;

function define(kind, plugin, required) {
  if (!plugin || typeof plugin !== 'object') throw new TypeError(`${kind}() takes an object`);
  if (typeof plugin.name !== 'string' || !NAME.test(plugin.name)) {
    throw new TypeError(`${kind}(): \`name\` must be lowercase letters, digits, '-' and '_' (got ${JSON.stringify(plugin.name)})`);
  }
  for (const method of required) {
    if (typeof plugin[method] !== 'function') throw new TypeError(`${kind} ${plugin.name} needs a \`${method}\` method`);
  }
  return Object.freeze({
    version: '0.1.0',
    description: '',
    capabilities: [],
    stateIgnores: [],
    ...plugin,
    kind,
  });
}

/** A source: `streams` says what there is, `partitions` splits a stream
 * into slices read in parallel (one by default), and `read` (a generator)
 * yields one slice's rows as objects (or `columns(...)`), with a
 * `checkpoint(state)` whenever the rows so far should not be read again. */
export function source(plugin) {
  return define('source', { batchRows: 8192, ...plugin }, ['streams', 'read']);
}

/** A filter: `open` makes one task's transform (`map` a row, or `process`
 * a batch, and `finish`), or give `map(row, config)` for a stateless one. */
export function filter(plugin) {
  if (typeof plugin?.open !== 'function' && typeof plugin?.map !== 'function') {
    throw new TypeError(`filter ${plugin?.name}: give \`open\` (per-task state) or \`map\``);
  }
  return define('filter', plugin, []);
}

/** A sink: `open` makes one task's writer (`write`, `commit`, `abort`). */
export function sink(plugin) {
  return define('sink', plugin, ['open']);
}

/** One task's transform for `plugin` (see `filter`). */
export function openTransform(plugin, config, fields) {
  const made = plugin.open ? plugin.open(config, fields) : { map: (row) => plugin.map(row, config) };
  if (!made || (typeof made.map !== 'function' && typeof made.process !== 'function')) {
    throw new TypeError(`filter ${plugin.name}: open() must return an object with \`map\` or \`process\``);
  }
  return made;
}

/** One batch through a transform: its `process`, or `map` on each row
 * (a row, a changed row, `null` to drop it, or an array of rows). */
export function processRows(transform, rows) {
  if (transform.process) return transform.process(rows) ?? [];
  // Indexed loops: in the component's interpreter `for...of` costs about
  // 2 µs an element (an iterator result a step), an index 0.1 µs.
  const out = [];
  for (let i = 0; i < rows.length; i++) {
    const mapped = transform.map(rows[i]);
    if (mapped === null || mapped === undefined) continue;
    if (Array.isArray(mapped)) {
      for (let k = 0; k < mapped.length; k++) out.push(mapped[k]);
    } else out.push(mapped);
  }
  return out;
}

/** Group what a reader yields into batches of rows, a checkpoint closing
 * the batch before it so its state covers exactly those rows. */
export function* batches(items, batchRows) {
  if (!items || typeof items[Symbol.iterator] !== 'function') {
    throw new TypeError('read() must return an iterable: write it as a generator, `*read(...) { yield ... }`');
  }
  let pending = [];
  for (const item of items) {
    // A row made by an object literal, the common case, checked first.
    if (item !== null && typeof item === 'object' && item.constructor === Object) {
      pending.push(item);
      if (pending.length >= batchRows) {
        yield pending;
        pending = [];
      }
      continue;
    }
    if (item instanceof Checkpoint) {
      if (pending.length) {
        yield pending;
        pending = [];
      }
      yield item;
      continue;
    }
    const rows = item instanceof Columns ? item.rows() : Array.isArray(item) ? item : null;
    if (rows) {
      if (!pending.length && rows.length >= batchRows) {
        yield rows; // a page of rows is a batch as it is
        continue;
      }
      for (let i = 0; i < rows.length; i++) pending.push(rows[i]);
    } else if (item !== null && typeof item === 'object') {
      pending.push(item);
    } else {
      throw new DataError(`read() yielded ${JSON.stringify(item)}: yield row objects, arrays of rows, columns(...) or checkpoint(...)`);
    }
    if (pending.length >= batchRows) {
      yield pending;
      pending = [];
    }
  }
  if (pending.length) yield pending;
}
