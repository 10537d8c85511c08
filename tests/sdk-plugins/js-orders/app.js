// Orders from a REST/JSON API, written in JavaScript: the Python example
// (examples/plugins/python-orders) again, so HTTP through `wasi:http` is
// tested from both SDKs against the same fixture.
//
// Pages are `{"data": [...], "links": {"next": URL or null}}`; the bearer
// token comes from a job secret the host fills in; the largest
// `updated_at` read is the state, checkpointed after every page.

import { DataError, checkpoint, config, field, http, log, source } from '@sluice/sdk';

const Config = config.object({
  base_url: config.string({ description: 'The API root, e.g. https://api.example.com/v1' }),
  resource: config.string({ default: 'orders' }),
  token_secret: config.string({ default: 'api_token', description: 'The job secret holding the bearer token' }),
  timeout: config.number({ default: 30 }),
});

const FIELDS = [field('id', 'int64', { nullable: false }), field('name', 'string'), field('updated_at', 'timestamptz')];

const firstUrl = (cfg) => `${cfg.base_url.replace(/\/+$/, '')}/${cfg.resource}`;

function get(cfg, url, since) {
  return http.get(url, {
    params: since ? { updated_since: since } : undefined,
    headers: { Authorization: `Bearer \${secret:${cfg.token_secret}}` },
    timeout: cfg.timeout,
  });
}

export default source({
  name: 'js-orders',
  description: 'Orders from a paginated REST API (JavaScript)',
  config: Config,
  capabilities: ['http'],
  streams: (cfg) => [{ name: cfg.resource, fields: FIELDS, primaryKey: ['id'], cursorFields: ['updated_at'], incremental: true }],
  check: (cfg) => void get(cfg, firstUrl(cfg), null).raiseForStatus(),
  *read(cfg, stream, partition, state) {
    let since = state?.updated_since ?? null;
    let url = firstUrl(cfg);
    let query = since;
    let pages = 0;
    while (url) {
      const page = get(cfg, url, query).raiseForStatus().json();
      if (!Array.isArray(page.data)) throw new DataError(`${url}: no \`data\` array in the response`);
      for (const record of page.data) {
        yield { id: record.id, name: record.name ?? null, updated_at: record.updated_at ?? null };
        if (record.updated_at && (since === null || record.updated_at > since)) since = record.updated_at;
      }
      pages += 1;
      if (since) yield checkpoint({ updated_since: since });
      // The next link already carries the query it needs.
      const next = page.links?.next;
      url = next ? new URL(next, url).toString() : null;
      query = null;
    }
    log.info(`${stream.name}: ${pages} pages, up to ${since}`);
  },
});
