// Run a plugin's logic natively, without wasm: what `node --test` calls.
//
// Calls go through the steps the component takes (config checked and
// filled in from JSON, rows batched and checkpointed, rows round-tripped
// through JSON), so what passes here behaves the same in `sluice run`;
// what only the host does (the JSON Schema check, Arrow types, grants) is
// checked by `sluice plugin test`.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as config from './config.js';
import { ConfigError, TransientError } from './errors.js';
import { installHost } from './host.js';
import { batches, openTransform, processRows } from './plugin.js';
import { decode, encode } from './rows.js';
import { Checkpoint, normalizePartition, normalizeStream } from './schema.js';

/** Log lines the plugin wrote, as `[level, message]`. */
export const logs = [];
let secrets = {};
let blobRoot = null;

/** Secrets for native runs: `${secret:name}` in a header becomes the value. */
export function useSecrets(values) {
  secrets = { ...values };
}

/** A local directory standing in for the job's `blob` grant. */
export function useBlobRoot(dir) {
  blobRoot = path.resolve(dir);
}

const roundTrip = (rows) => decode(encode(rows));
const configOf = (plugin, value) => config.load(plugin.config, typeof value === 'string' ? value : JSON.stringify(value ?? {}));
const json = (value) => JSON.parse(JSON.stringify(value ?? null));

/** Read every partition of `stream` (the first when left out), from
 * `states` (partition id → state) as a run after an earlier one would.
 * Returns `{ rows, states, batches }`. */
export function read(plugin, configValue, { stream, states } = {}) {
  const parsed = configOf(plugin, configValue);
  plugin.check?.(parsed);
  const chosen = plugin.streams(parsed).map(normalizeStream).find((s) => stream === undefined || s.name === stream);
  if (!chosen) throw new Error(`no stream ${JSON.stringify(stream)}`);
  const out = { rows: [], states: { ...(states ?? {}) }, batches: 0 };
  const given = states && Object.keys(states).length ? json(states) : null;
  const parts = plugin.partitions ? plugin.partitions(parsed, chosen, given) : [{ id: 'all', spec: null }];
  for (const p of parts.map(normalizePartition)) {
    const items = plugin.read(parsed, chosen, { id: p.id, spec: json(p.spec) }, json(states?.[p.id]));
    for (const item of batches(items, plugin.batchRows)) {
      if (item instanceof Checkpoint) {
        out.states[p.id] = json(item.state);
      } else {
        out.batches += 1;
        out.rows.push(...roundTrip(item));
      }
    }
  }
  return out;
}

/** Pass `rows` through a filter as one batch, then `finish`. */
export function runFilter(plugin, configValue, fields, rows) {
  const parsed = configOf(plugin, configValue);
  plugin.outputFields?.(parsed, fields);
  const transform = openTransform(plugin, parsed, fields);
  const out = [...processRows(transform, roundTrip(rows)), ...(transform.finish?.() ?? [])];
  return roundTrip(out);
}

/** Write each batch and commit once, as one task of a run. Returns
 * `{ commits, outputs }` (`finishStream`'s outputs). */
export function write(plugin, configValue, stream, fields, batchesOfRows, { task = 't0', fresh = true } = {}) {
  const parsed = configOf(plugin, configValue);
  plugin.check?.(parsed);
  plugin.beginStream?.(parsed, stream, fresh);
  const writer = plugin.open(parsed, stream, fields, task);
  let written = 0;
  for (const rows of batchesOfRows) {
    const decoded = roundTrip(rows);
    written += decoded.length;
    writer.write(decoded);
  }
  const commit = writer.commit?.() ?? { rows: written };
  return { commits: [commit], outputs: [...(plugin.finishStream?.(parsed, stream) ?? [])] };
}

/** The JSON Schema the host validates this plugin's config against. */
export const jsonSchema = (plugin) => config.pluginSchema(plugin);

function local(rel) {
  if (!blobRoot) throw new ConfigError('no blob grant: call useBlobRoot(dir) first');
  const full = path.resolve(blobRoot, rel);
  if (full !== blobRoot && !full.startsWith(blobRoot + path.sep)) throw new ConfigError(`${rel} is outside the blob grant`);
  return full;
}

function globToRegExp(pattern) {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const nativeBlob = {
  list(pattern, startAfter) {
    const match = globToRegExp(pattern);
    const found = [];
    const walk = (dir) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else {
          const rel = path.relative(blobRoot, full).split(path.sep).join('/');
          if (match.test(rel) && (startAfter === undefined || rel > startAfter)) {
            const st = fs.statSync(full);
            found.push({ path: rel, size: st.size, modifiedMs: Math.floor(st.mtimeMs) });
          }
        }
      }
    };
    walk(local('.'));
    return found.sort((a, b) => (a.path < b.path ? -1 : 1));
  },
  stat(rel) {
    const full = local(rel);
    if (!fs.existsSync(full) || !fs.statSync(full).isFile()) return null;
    const st = fs.statSync(full);
    return { path: rel, size: st.size, modifiedMs: Math.floor(st.mtimeMs) };
  },
  read(rel, offset, length) {
    const fd = fs.openSync(local(rel), 'r');
    try {
      const buf = Buffer.alloc(length);
      const got = fs.readSync(fd, buf, 0, length, offset);
      return new Uint8Array(buf.subarray(0, got));
    } finally {
      fs.closeSync(fd);
    }
  },
  write(rel, data) {
    const full = local(rel);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, data);
  },
  rename: (from, to) => fs.renameSync(local(from), local(to)),
  delete: (rel) => fs.rmSync(local(rel), { force: true }),
};

// Node's `fetch` is asynchronous and a plugin's calls are not: each
// request runs in a child Node process this one waits for.
const FETCH = `
let input = '';
for await (const chunk of process.stdin) input += chunk;
const r = JSON.parse(input);
try {
  const body = r.body ? Buffer.from(r.body, 'base64') : undefined;
  const res = await fetch(r.url, { method: r.method, headers: r.headers, body, redirect: 'manual',
    signal: r.timeout ? AbortSignal.timeout(r.timeout * 1000) : undefined });
  const headers = {};
  res.headers.forEach((v, k) => { headers[k] = v; });
  const bytes = Buffer.from(await res.arrayBuffer());
  process.stdout.write(JSON.stringify({ status: res.status, headers, body: bytes.toString('base64') }));
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e.cause?.message ?? e.message) }));
}`;

function nativeHttp(method, url, headers, body, timeout) {
  const filled = {};
  for (const [k, v] of Object.entries(headers)) {
    filled[k] = v.replace(/\$\{secret:([^}]+)\}/g, (_, name) => {
      if (!(name in secrets)) throw new ConfigError(`secret \`${name}\` is not set: call useSecrets({...}) first`);
      return secrets[name];
    });
  }
  const request = { method, url, headers: filled, body: body.length ? Buffer.from(body).toString('base64') : '', timeout };
  const out = JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', FETCH], { input: JSON.stringify(request), maxBuffer: 1 << 30 }),
  );
  if (out.error) throw new TransientError(`${method} ${url} failed: ${out.error}`);
  return { status: out.status, headers: out.headers, body: new Uint8Array(Buffer.from(out.body, 'base64')) };
}

installHost({
  log: (level, message) => logs.push([level, message]),
  blob: nativeBlob,
  http: nativeHttp,
});
