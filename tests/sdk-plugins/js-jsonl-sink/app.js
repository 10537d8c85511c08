// A sink that writes JSON Lines files through the `blob` grant: each
// commit writes one file, staged under a hidden name and renamed into
// place, so a failed task leaves no partial file.

import { ConfigError, DataError, blob, config, sink } from '@sluice/sdk';

const Config = config.object({
  prefix: config.string({ default: 'out', description: 'Output directory inside the grant' }),
});

export default sink({
  name: 'js-jsonl-sink',
  description: 'JSON Lines files through the blob grant, written in JavaScript',
  config: Config,
  capabilities: ['blob'],
  check(cfg) {
    // The grant must let it write, read back and delete.
    const probe = `${cfg.prefix}/.check`;
    blob.write(probe, 'ok');
    if (blob.readText(probe) !== 'ok') throw new ConfigError(`${probe} did not read back as written`);
    blob.remove(probe);
  },
  beginStream(cfg, stream, fresh) {
    if (fresh) for (const o of blob.list(`${cfg.prefix}/${stream}/*.jsonl`)) blob.remove(o.path);
  },
  finishStream: (cfg, stream) => [`${cfg.prefix}/${stream}/`],
  open(cfg, stream, fields, task) {
    const dir = `${cfg.prefix}/${stream}`;
    // `task` is unique within a run: the time keeps runs apart.
    const name = `${Date.now().toString(16)}-${task}`;
    const names = fields.map((f) => f.name).join(',');
    let lines = [];
    let part = 0;
    return {
      write(rows) {
        for (const row of rows) {
          if (Object.keys(row).join(',') !== names) throw new DataError(`row keys ${Object.keys(row)} are not the schema's ${names}`);
          lines.push(JSON.stringify(row, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
        }
      },
      commit() {
        if (!lines.length) return { rows: 0 };
        const path = `${dir}/${name}-${String(part).padStart(4, '0')}.jsonl`;
        const text = `${lines.join('\n')}\n`;
        blob.write(`${path}.partial`, text);
        blob.rename(`${path}.partial`, path);
        const done = { rows: lines.length, bytes: new TextEncoder().encode(text).length, outputs: [path] };
        lines = [];
        part += 1;
        return done;
      },
      abort() {
        lines = [];
      },
    };
  },
});
