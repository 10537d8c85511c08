// A row filter written in TypeScript: masks e-mail addresses and drops
// test accounts, for the users a CSV export hands to an analytics table.
//
//   user@corp.jp     → u***@corp.jp
//   qa@example.com   → (dropped: a test account)

import { ConfigError, type Field, type Row, config, filter } from '@sluice/sdk';

const Config = config.object({
  email: config.string({ default: 'email', description: 'The column holding e-mail addresses' }),
  drop_domains: config.list(config.string(), {
    default: ['@example.com'],
    description: 'Rows whose address ends with one of these are dropped',
  }),
  keep_first: config.integer({ default: 1, minimum: 0, description: 'Characters of the user part left unmasked' }),
});

export type Config = config.Infer<typeof Config>;

/** `user@domain` with all but the first `keep` characters of the user masked. */
export function mask(address: string, keep: number): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return '***';
  return `${address.slice(0, Math.min(keep, at))}***${address.slice(at)}`;
}

export default filter({
  name: 'ts-mask',
  description: 'Masks e-mail addresses and drops test accounts (TypeScript)',
  config: Config,
  open(cfg: Config, fields: Field[]) {
    const column = fields.find((f) => f.name === cfg.email);
    if (!column) throw new ConfigError(`no column \`${cfg.email}\` in the input (it has ${fields.map((f) => f.name).join(', ')})`);
    if (column.type !== 'string') throw new ConfigError(`column \`${cfg.email}\` is ${column.type}, not string`);
    const drop = cfg.drop_domains.map((d) => d.toLowerCase());
    const dropped = (address: string): boolean => {
      const lower = address.toLowerCase();
      for (let d = 0; d < drop.length; d++) if (lower.endsWith(drop[d])) return true;
      return false;
    };
    return {
      // Indexed loops: in the component's interpreter `for...of` costs
      // about 2 µs a row, an index 0.1 µs.
      process(rows: Row[]): Row[] {
        const out: Row[] = [];
        for (let i = 0; i < rows.length; i++) {
          const row = rows[i];
          const address = row[cfg.email];
          if (typeof address === 'string') {
            if (dropped(address)) continue;
            row[cfg.email] = mask(address, cfg.keep_first);
          }
          out.push(row);
        }
        return out;
      },
    };
  },
});
