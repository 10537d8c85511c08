// Object storage through the job's `blob` grant: a local directory, an
// `s3://` or a `gs://` prefix. Paths are relative to the grant; the host
// refuses anything outside it (a `ConfigError`). Natively (tests) a local
// directory stands in for the grant (`testing.useBlobRoot(dir)`).

import { InternalError } from './errors.js';
import { host } from './host.js';

function blob() {
  if (!host.blob) {
    throw new InternalError("no blob store here: in native tests call useBlobRoot(dir) from '@sluice/sdk/testing'");
  }
  return host.blob;
}

const encoder = new TextEncoder();

/** Objects whose paths match the glob `pattern`, in path order:
 * `[{ path, size, modifiedMs }]`. */
export const list = (pattern = '**', startAfter = undefined) => blob().list(pattern, startAfter);

/** An object's `{ path, size, modifiedMs }`, or `null` when there is none. */
export const stat = (path) => blob().stat(path);

/** Bytes `offset .. offset + length` of an object (all of it by default). */
export function read(path, offset = 0, length = undefined) {
  if (length === undefined) {
    const found = stat(path);
    length = found ? Math.max(found.size - offset, 0) : 0;
  }
  return blob().read(path, offset, length);
}

/** An object's bytes as UTF-8 text. */
export const readText = (path) => new TextDecoder().decode(read(path));

/** Create or replace an object with bytes or text. */
export const write = (path, data) => blob().write(path, typeof data === 'string' ? encoder.encode(data) : data);

/** Rename an object within the grant. */
export const rename = (from, to) => blob().rename(from, to);

/** Delete an object (no error when there is none). */
export const remove = (path) => blob().delete(path);
