// Outgoing HTTP: the only way out of the sandbox.
//
// Calls are synchronous, like every call of the contract. Inside the
// component a request goes through `wasi:http`, and the host lets it
// through only to the hosts the job grants (`grants: {http: {hosts:
// [...]}}`); `${secret:name}` in a header value is filled in by the host,
// so the plugin never sees the secret. Natively (tests) requests go
// through Node, with secrets from `testing.useSecrets({...})`.
// (`fetch` is left out of the component: it is asynchronous, and a
// contract call cannot wait for a promise.)

import { AuthError, DataError, InternalError, TransientError } from './errors.js';
import { host } from './host.js';

/** A whole response. */
export class Response {
  constructor(status, headers, body, url) {
    /** The status code. */
    this.status = status;
    /** Header names in lower case; repeated headers joined by `, `. */
    this.headers = headers;
    /** The body's bytes. */
    this.body = body;
    this.url = url;
  }

  /** The body as UTF-8 text. */
  text() {
    return new TextDecoder().decode(this.body);
  }

  /** The body parsed as JSON; a `DataError` when it is not. */
  json() {
    try {
      return JSON.parse(this.text());
    } catch (e) {
      throw new DataError(`${this.url} did not return JSON: ${e.message}`);
    }
  }

  /** Throw the typed error a status means: 401/403 `AuthError`,
   * 408/429/5xx `TransientError` (retried), other 4xx `DataError`. */
  raiseForStatus() {
    if (this.status < 400) return this;
    const message = `${this.url} answered ${this.status}: ${this.text().slice(0, 500)}`;
    if (this.status === 401 || this.status === 403) throw new AuthError(message);
    if (this.status === 408 || this.status === 429 || this.status >= 500) throw new TransientError(message);
    throw new DataError(message);
  }
}

/** Send one request and read the whole response. `options`: `params`
 * (added to the query), `headers`, `body` (bytes or text), `json` (sent as
 * JSON), `timeout` (seconds). */
export function request(method, url, options = {}) {
  if (!host.http) {
    throw new InternalError("no HTTP here: in native tests import '@sluice/sdk/testing' first");
  }
  if (options.params) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(options.params)) query.append(k, String(v));
    url += (url.includes('?') ? '&' : '?') + query.toString();
  }
  const headers = {};
  for (const [k, v] of Object.entries(options.headers ?? {})) headers[k.toLowerCase()] = String(v);
  let body = options.body ?? new Uint8Array();
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] ??= 'application/json';
  }
  if (typeof body === 'string') body = new TextEncoder().encode(body);
  const got = host.http(method.toUpperCase(), url, headers, body, options.timeout);
  return new Response(got.status, got.headers, got.body, url);
}

/** `GET url`. */
export const get = (url, options) => request('GET', url, options);

/** `POST url`. */
export const post = (url, options) => request('POST', url, options);
