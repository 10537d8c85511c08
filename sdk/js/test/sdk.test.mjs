// The SDK's own tests, natively: `node --test test/`.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

import {
  AuthError,
  ConfigError,
  DataError,
  TransientError,
  blob,
  checkpoint,
  columns,
  config,
  field,
  filter,
  http,
  log,
  sink,
  source,
} from '../src/index.js';
import { batches } from '../src/plugin.js';
import { decode, encode, integerColumns } from '../src/rows.js';
import * as testing from '../src/testing.js';

const Config = config.object({
  base_url: config.string({ description: 'The API root' }),
  page_size: config.integer({ default: 100, minimum: 1 }),
  token: config.optional(config.string()),
  mode: config.oneOf(['full', 'fast'], { default: 'full' }),
  tags: config.list(config.string(), { default: [] }),
  limits: config.map(config.number(), { default: {} }),
});

test('config: the JSON Schema says what is required, typed and defaulted', () => {
  const schema = Config.schema();
  assert.deepEqual(schema.required, ['base_url']);
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.properties.page_size, { type: 'integer', minimum: 1, default: 100 });
  assert.deepEqual(schema.properties.token, { anyOf: [{ type: 'string' }, { type: 'null' }] });
  assert.deepEqual(schema.properties.mode, { enum: ['full', 'fast'], default: 'full' });
  assert.equal(schema.properties.base_url.description, 'The API root');
});

test('config: loading fills defaults and names the path of what does not fit', () => {
  const got = config.load(Config, '{"base_url": "http://x", "limits": {"a": 1.5}}');
  assert.deepEqual(got, { base_url: 'http://x', page_size: 100, token: null, mode: 'full', tags: [], limits: { a: 1.5 } });
  const fails = (text, message) => assert.throws(() => config.load(Config, text), (e) => e instanceof ConfigError && e.message === message);
  fails('{}', 'config.base_url is required');
  fails('{"base_url": "x", "pagesize": 1}', 'config: unknown key `pagesize`');
  fails('{"base_url": "x", "page_size": "10"}', 'config.page_size: expected integer, got "10"');
  fails('{"base_url": "x", "page_size": 0}', 'config.page_size: 0 is less than the minimum 1');
  fails('{"base_url": "x", "tags": ["a", 2]}', 'config.tags[1]: expected string, got 2');
  fails('{"base_url": "x", "mode": "slow"}', 'config.mode: expected one of "full", "fast", got "slow"');
  fails('{"base_url": ', "config is not JSON: Unexpected end of JSON input");
});

test('rows: big integers, bytes and dates keep their values through JSON', () => {
  const big = 9007199254740993n;
  const text = encode([{ id: big, raw: new Uint8Array([0, 15, 255]), at: new Date('2026-12-07T10:00:00Z'), n: 1 }]);
  assert.equal(text, '[{"id":"9007199254740993","raw":"000fff","at":"2026-12-07T10:00:00.000Z","n":1}]');
  assert.equal(BigInt.prototype.toJSON, undefined, 'the toJSON hooks are removed after the call');
  const rows = decode('{"id":9007199254740993,"s":"1234567890123456789 in a string","x":1.5}\n{"id":-12345678901234567890,"s":"\\"9999999999999999999\\"","x":12345678901234567e3}\n');
  assert.equal(rows[0].id, big);
  assert.equal(rows[0].s, '1234567890123456789 in a string');
  assert.equal(rows[1].id, -12345678901234567890n);
  assert.equal(rows[1].s, '"9999999999999999999"');
  assert.equal(rows[1].x, 12345678901234567e3);
  assert.deepEqual(decode('{"id":1}\n{"id":2}'), [{ id: 1 }, { id: 2 }]);
  assert.deepEqual(decode(''), []);
  assert.throws(() => encode([{ x: { toJSON() { throw new Error('no'); } } }]), DataError);
});

test('batches: a checkpoint closes the batch before it; columns and arrays become rows', () => {
  const items = [{ a: 1 }, { a: 2 }, checkpoint(1), [{ a: 3 }, { a: 4 }, { a: 5 }], columns({ a: [6, 7] })];
  const got = [...batches(items, 3)];
  assert.deepEqual(got.map((b) => (Array.isArray(b) ? b.map((r) => r.a) : `cp${b.state}`)), [[1, 2], 'cp1', [3, 4, 5], [6, 7]]);
  assert.throws(() => [...batches([1], 3)], DataError);
  assert.throws(() => [...batches([columns({ a: [1], b: [] })], 3)], DataError);
  assert.throws(() => [...batches(undefined, 3)], TypeError);
});

const counter = source({
  name: 'counter',
  config: config.object({ rows: config.integer({ default: 5 }), parts: config.integer({ default: 2 }) }),
  streams: () => [{ name: 'numbers', fields: [field('n', 'int64', { nullable: false })], incremental: true }],
  partitions: (cfg) => Array.from({ length: cfg.parts }, (_, i) => ({ id: `p${i}`, spec: { part: i } })),
  *read(cfg, stream, partition, state) {
    let n = state?.next ?? 0;
    for (; n < cfg.rows; n++) {
      if (n % cfg.parts === partition.spec.part) yield { n };
    }
    yield checkpoint({ next: n });
  },
});

test('testing.read: every partition, checkpoints as states, and a resume from them', () => {
  const first = testing.read(counter, { rows: 6 });
  assert.deepEqual(first.rows.map((r) => r.n).sort(), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(first.states, { p0: { next: 6 }, p1: { next: 6 } });
  const again = testing.read(counter, { rows: 8 }, { states: first.states });
  assert.deepEqual(again.rows.map((r) => r.n).sort(), [6, 7]);
  assert.throws(() => testing.read(counter, { rows: 'x' }), ConfigError);
  assert.deepEqual(testing.jsonSchema(counter).properties.rows, { type: 'integer', default: 5 });
});

test('definitions: a missing method or a bad name fails at once', () => {
  assert.throws(() => source({ name: 'x', streams: () => [] }), /needs a `read` method/);
  assert.throws(() => source({ name: 'Bad Name', streams: () => [], read() {} }), /lowercase/);
  assert.throws(() => filter({ name: 'f' }), /open|map/);
  assert.throws(() => sink({ name: 's' }), /needs a `open` method/);
});

test('testing.runFilter: map drops, changes and splits rows; open keeps state; finish emits', () => {
  const drop = filter({ name: 'drop', map: (row, cfg) => (row.n === cfg.skip ? null : row.n === 2 ? [row, row] : { ...row, m: row.n * 10 }) });
  assert.deepEqual(testing.runFilter(drop, { skip: 1 }, [], [{ n: 1 }, { n: 2 }, { n: 3 }]), [{ n: 2 }, { n: 2 }, { n: 3, m: 30 }]);
  const total = filter({
    name: 'total',
    open: () => {
      let sum = 0;
      return { map: (row) => void (sum += row.n), finish: () => [{ n: sum }] };
    },
  });
  assert.deepEqual(testing.runFilter(total, {}, [], [{ n: 1 }, { n: 2 }]), [{ n: 3 }]);
});

test('testing.write: rows reach the writer, a bare commit reports them, finishStream runs', () => {
  const seen = [];
  const memory = sink({
    name: 'memory',
    open: () => ({ write: (rows) => seen.push(...rows) }),
    finishStream: (cfg, stream) => [`memory://${stream}`],
  });
  const got = testing.write(memory, {}, 'things', [field('a', 'int64')], [[{ a: 1 }], [{ a: 2 }, { a: 3 }]]);
  assert.deepEqual(seen, [{ a: 1 }, { a: 2 }, { a: 3 }]);
  assert.deepEqual(got, { commits: [{ rows: 3 }], outputs: ['memory://things'] });
});

test('blob: natively a directory stands in for the grant, and nothing outside it is reached', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-js-'));
  testing.useBlobRoot(dir);
  blob.write('a/b.txt', 'hello');
  blob.write('c.bin', new Uint8Array([1, 2, 3]));
  assert.deepEqual(blob.list('**').map((o) => [o.path, o.size]), [['a/b.txt', 5], ['c.bin', 3]]);
  assert.deepEqual(blob.list('*.bin').map((o) => o.path), ['c.bin']);
  assert.equal(blob.readText('a/b.txt'), 'hello');
  assert.deepEqual([...blob.read('c.bin', 1, 1)], [2]);
  blob.rename('c.bin', 'd.bin');
  assert.equal(blob.stat('c.bin'), null);
  blob.remove('d.bin');
  assert.throws(() => blob.read('../outside'), ConfigError);
  log.info('logged');
  assert.deepEqual(testing.logs.at(-1), ['info', 'logged']);
});

test('http: natively through Node, with secrets filled in and statuses typed', async () => {
  // The server runs in a child process: a native request blocks this one.
  const server = spawn(process.execPath, ['-e', `
    require('http').createServer((req, res) => {
      const status = Number(new URL(req.url, 'http://x').searchParams.get('status') ?? 200);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ auth: req.headers.authorization ?? null, method: req.method }));
    }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`]);
  const port = await new Promise((resolve) => server.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  try {
    testing.useSecrets({ token: 's3cret' });
    const url = `http://127.0.0.1:${port}/things`;
    const ok = http.get(url, { headers: { Authorization: 'Bearer ${secret:token}' } }).raiseForStatus();
    assert.deepEqual(ok.json(), { auth: 'Bearer s3cret', method: 'GET' });
    assert.equal(ok.headers['content-type'], 'application/json');
    assert.throws(() => http.get(url, { params: { status: 401 } }).raiseForStatus(), AuthError);
    assert.throws(() => http.get(url, { params: { status: 503 } }).raiseForStatus(), TransientError);
    assert.throws(() => http.get(url, { params: { status: 404 } }).raiseForStatus(), DataError);
    assert.throws(() => http.get(url, { headers: { a: '${secret:missing}' } }), ConfigError);
    assert.throws(() => http.get('http://127.0.0.1:1/'), TransientError);
  } finally {
    server.kill();
  }
});

test('rows: with the integer columns named, only their values decide whether digits were lost', () => {
  const text = '{"id":9007199254740993,"s":"12345678901234567890"}\n{"id":1,"s":"x"}';
  const rows = decode(text, ['id']);
  assert.equal(rows[0].id, 9007199254740993n);
  assert.equal(rows[0].s, '12345678901234567890');
  assert.deepEqual(decode('{"id":1,"s":"12345678901234567890"}', ['id']), [{ id: 1, s: '12345678901234567890' }]);
  assert.deepEqual(integerColumns([field('a', 'int64'), field('b', 'string'), field('c', 'uint64')]), ['a', 'c']);
});
