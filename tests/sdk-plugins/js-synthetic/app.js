// A synthetic source: `rows` rows of 8 columns, for tests and
// `cargo xtask bench sdk` (the same rows as py-synthetic and the Rust
// `synthetic` test plugin).

import { checkpoint, columns, config, field, source } from '@sluice/sdk';

const Config = config.object({
  rows: config.integer({ default: 1000, minimum: 0 }),
  partitions: config.integer({ default: 1, minimum: 1, description: 'Partitions split the rows evenly' }),
  checkpoint_every: config.integer({ default: 0, description: 'Checkpoint every this many rows (0: never)' }),
  as_columns: config.boolean({ default: false, description: 'Yield columns(...) instead of row objects' }),
  as_arrays: config.boolean({ default: false, description: 'Yield an array of row objects a batch, as a REST source yields a page' }),
});

const FIELDS = [
  field('id', 'int64', { nullable: false }),
  field('name', 'string'),
  field('amount', 'decimal(12,2)'),
  field('ratio', 'float64'),
  field('active', 'bool'),
  field('day', 'date'),
  field('at', 'timestamptz'),
  field('note', 'string'),
];

const amount = (i) => `${i % 100000}.${String(i % 100).padStart(2, '0')}`;

const row = (i) => ({
  id: i,
  name: `name-${i}`,
  amount: amount(i),
  ratio: i / 7,
  active: i % 2 === 0,
  day: '2026-12-07',
  at: '2026-12-07T10:00:00Z',
  note: i % 10 === 0 ? null : 'x',
});

function columnsOf(lo, hi) {
  const ids = Array.from({ length: hi - lo }, (_, k) => lo + k);
  return columns({
    id: ids,
    name: ids.map((i) => `name-${i}`),
    amount: ids.map(amount),
    ratio: ids.map((i) => i / 7),
    active: ids.map((i) => i % 2 === 0),
    day: ids.map(() => '2026-12-07'),
    at: ids.map(() => '2026-12-07T10:00:00Z'),
    note: ids.map((i) => (i % 10 === 0 ? null : 'x')),
  });
}

export default source({
  name: 'js-synthetic',
  description: 'Synthetic rows, written in JavaScript',
  config: Config,
  streams: () => [{ name: 'synthetic', fields: FIELDS, primaryKey: ['id'], incremental: true }],
  partitions(cfg) {
    const per = Math.ceil(cfg.rows / cfg.partitions);
    return Array.from({ length: cfg.partitions }, (_, i) => ({
      id: `p${i}`,
      spec: { start: i * per, end: Math.min((i + 1) * per, cfg.rows) },
    }));
  },
  *read(cfg, stream, partition, state) {
    const start = state === null ? partition.spec.start : state.next;
    const end = partition.spec.end;
    const step = cfg.checkpoint_every || end - start || 1;
    for (let lo = start; lo < end; lo += step) {
      const hi = Math.min(lo + step, end);
      if (cfg.as_columns) {
        for (let c = lo; c < hi; c += 8192) yield columnsOf(c, Math.min(c + 8192, hi));
      } else if (cfg.as_arrays) {
        for (let c = lo; c < hi; c += 8192) {
          const page = [];
          for (let i = c; i < Math.min(c + 8192, hi); i++) page.push(row(i));
          yield page;
        }
      } else {
        for (let i = lo; i < hi; i++) yield row(i);
      }
      if (cfg.checkpoint_every) yield checkpoint({ next: hi });
    }
  },
});
