// Rows as JSON: how rows cross to the host without Arrow.
//
// The host decodes the text natively against the schema
// (`batch.from-json-lines`) and writes batches back the same way
// (`batch.to-json-lines`): decimals, dates and timestamps travel as
// strings, binary as hex. Integers beyond 2^53 travel as strings both ways
// and come back as `BigInt`, so an id never loses a digit.

import { DataError } from './errors.js';

function bigintToJSON() {
  return this.toString();
}

function bytesToJSON() {
  let hex = '';
  for (let i = 0; i < this.length; i++) hex += (this[i] < 16 ? '0' : '') + this[i].toString(16);
  return hex;
}

/** `rows` (objects keyed by column name) as text `batch.from-json-lines`
 * reads: one JSON array written by one `JSON.stringify` call. `BigInt`
 * values are written as strings and `Uint8Array`s as hex, through
 * `toJSON` hooks set only for the length of the call. */
export function encode(rows) {
  const hadBig = Object.prototype.hasOwnProperty.call(BigInt.prototype, 'toJSON');
  const hadBytes = Object.prototype.hasOwnProperty.call(Uint8Array.prototype, 'toJSON');
  if (!hadBig) BigInt.prototype.toJSON = bigintToJSON;
  if (!hadBytes) Uint8Array.prototype.toJSON = bytesToJSON;
  try {
    return JSON.stringify(rows);
  } catch (e) {
    throw new DataError(`a row cannot be written as JSON: ${e.message}`);
  } finally {
    if (!hadBig) delete BigInt.prototype.toJSON;
    if (!hadBytes) delete Uint8Array.prototype.toJSON;
  }
}

// A run of 16 or more digits: a number that may not fit a double exactly.
const LONG_DIGITS = /\d{16}/;
const BIG_MARK = '\u0000bigint:';

/** The rows of JSON Lines text (one object a line) or of one array.
 *
 * `integerColumns`, when given, names the columns that may hold integers
 * beyond 2^53: after a plain parse only their values are looked at, and the
 * text is parsed again keeping every digit only when one lost some. Without
 * it the whole text is searched for long digit runs first, which in the
 * component's interpreter costs more than the parse itself. */
export function decode(text, integerColumns = undefined) {
  text = text.trim();
  if (!text) return [];
  const array = text.startsWith('[') ? text : `[${text.replaceAll('\n', ',')}]`;
  const exact = () => reviveBig(JSON.parse(markBigIntegers(array)));
  if (integerColumns === undefined) return LONG_DIGITS.test(array) ? exact() : JSON.parse(array);
  const rows = JSON.parse(array);
  for (const column of integerColumns) {
    for (let i = 0; i < rows.length; i++) {
      const value = rows[i][column];
      if (typeof value === 'number' && !Number.isSafeInteger(value)) return exact();
    }
  }
  return rows;
}

/** The columns of `fields` whose values may be integers beyond 2^53. */
export function integerColumns(fields) {
  return fields.filter((f) => /^u?int64$/i.test(f.type)).map((f) => f.name);
}

/** Wrap every integer outside a string that does not fit a double exactly
 * in a marked string, so `JSON.parse` keeps its digits. */
function markBigIntegers(text) {
  let out = '';
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) {
      inString = true;
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      let end = i + 1;
      while (end < text.length) {
        const d = text.charCodeAt(end);
        if (d >= 48 && d <= 57) end++;
        else break;
      }
      const next = text.charCodeAt(end);
      const integer = next !== 46 && next !== 101 && next !== 69; // not . e E
      const token = text.slice(i, end);
      if (integer && token.length >= 16 && !Number.isSafeInteger(Number(token))) {
        // The mark is written escaped: JSON forbids a raw control character.
        out += `${text.slice(last, i)}"\\u0000bigint:${token}"`;
        last = end;
      }
      i = end - 1;
    }
  }
  return out + text.slice(last);
}

function reviveBig(value) {
  if (typeof value === 'string') {
    return value.startsWith(BIG_MARK) ? BigInt(value.slice(BIG_MARK.length)) : value;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reviveBig(value[i]);
    return value;
  }
  if (value && typeof value === 'object') {
    for (const k of Object.keys(value)) value[k] = reviveBig(value[k]);
  }
  return value;
}
