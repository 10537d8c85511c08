// The capabilities inside the component: the contract's `log` and `blob`
// and the standard `wasi:http`, installed into `../host.js`.

import { log } from 'sluice:plugin/log@0.2.0';
import * as wit from 'sluice:plugin/blob@0.2.0';
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingBody, OutgoingRequest, RequestOptions } from 'wasi:http/types@0.2.12';
import { ConfigError, TransientError, callHost as call } from '../errors.js';
import { installHost } from '../host.js';

const info = (o) => ({ path: o.path, size: Number(o.size), modifiedMs: Number(o.modifiedMs) });

const blob = {
  list: (pattern, startAfter) => call(() => wit.list(pattern, startAfter ?? undefined)).map(info),
  stat: (path) => {
    const found = call(() => wit.stat(path));
    return found ? info(found) : null;
  },
  read: (path, offset, length) => call(() => wit.read(path, BigInt(offset), BigInt(length))),
  write: (path, data) => call(() => wit.write(path, data)),
  rename: (from, to) => call(() => wit.rename(from, to)),
  delete: (path) => call(() => wit.delete(path)),
};

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const encoder = new TextEncoder();

function refused(method, url, code) {
  const tag = code?.tag ?? 'no response';
  if (tag === 'HTTP-request-denied') {
    return new ConfigError(
      `${method} ${url} was refused by the host: \`${new URL(url).hostname}\` is not in this plugin's grants.http.hosts`,
    );
  }
  const detail = code?.val !== undefined ? `: ${JSON.stringify(code.val, (_, v) => (typeof v === 'bigint' ? String(v) : v))}` : '';
  return new TransientError(`${method} ${url} failed: ${tag}${detail}`);
}

function http(method, url, headers, body, timeout) {
  const parts = new URL(url);
  if (parts.protocol !== 'http:' && parts.protocol !== 'https:') throw new ConfigError(`${url}: only http and https URLs`);
  const request = new OutgoingRequest(Fields.fromList(Object.entries(headers).map(([k, v]) => [k, encoder.encode(v)])));
  request.setMethod(METHODS.has(method) ? { tag: method.toLowerCase() } : { tag: 'other', val: method });
  request.setScheme({ tag: parts.protocol === 'https:' ? 'HTTPS' : 'HTTP' });
  request.setAuthority(parts.host);
  request.setPathWithQuery(`${parts.pathname || '/'}${parts.search}`);
  let options;
  if (timeout) {
    options = new RequestOptions();
    const nanos = BigInt(Math.round(timeout * 1e9));
    options.setConnectTimeout(nanos);
    options.setFirstByteTimeout(nanos);
    options.setBetweenBytesTimeout(nanos);
  }
  const outgoing = request.body();
  let future;
  try {
    future = handle(request, options);
  } catch (e) {
    throw refused(method, url, e?.payload ?? e);
  }
  if (body.length) {
    const stream = outgoing.write();
    for (let start = 0; start < body.length; start += 4096) {
      stream.blockingWriteAndFlush(body.subarray(start, start + 4096));
    }
    stream[Symbol.dispose ?? Symbol.for('dispose')]?.();
  }
  OutgoingBody.finish(outgoing, undefined);
  future.subscribe().block();
  const got = future.get();
  // option<result<result<incoming-response, error-code>, _>>
  if (got === undefined || got.tag === 'err' || got.val.tag === 'err') {
    throw refused(method, url, got?.tag === 'ok' ? got.val.val : undefined);
  }
  const response = got.val.val;
  const status = response.status();
  const found = {};
  for (const [name, value] of response.headers().entries()) {
    const key = name.toLowerCase();
    const text = new TextDecoder('latin1').decode(value);
    found[key] = key in found ? `${found[key]}, ${text}` : text;
  }
  const incoming = response.consume();
  const stream = incoming.stream();
  const chunks = [];
  let size = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(65536n);
    } catch (e) {
      if ((e?.payload ?? e)?.tag === 'closed') break;
      throw new TransientError(`${method} ${url}: the response broke off`);
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return { status, headers: found, body: all };
}

installHost({ log: (level, message) => log(level, message), blob, http });
