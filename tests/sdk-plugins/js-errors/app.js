// A source that fails on purpose, where and how its config says: every
// error kind, from every call, must reach the user typed and named.

import { AuthError, ConfigError, DataError, TransientError, checkpoint, config, field, source } from '@sluice/sdk';

const ERRORS = { config: ConfigError, auth: AuthError, transient: TransientError, data: DataError };

const Config = config.object({
  fail_in: config.oneOf(['none', 'check', 'discover', 'partitions', 'open', 'next'], { default: 'none' }),
  kind: config.oneOf(['config', 'auth', 'transient', 'data', 'bug', 'throw-string', 'bad-row'], { default: 'config' }),
  rows: config.integer({ default: 10 }),
});

function failOnPurpose(cfg, call) {
  if (cfg.fail_in !== call || cfg.kind === 'bad-row') return;
  if (cfg.kind === 'bug') {
    const missing = undefined;
    return missing.property; // a plain bug: a TypeError with a stack
  }
  if (cfg.kind === 'throw-string') throw 'a bare string'; // not even an Error
  throw new ERRORS[cfg.kind](`${cfg.kind} failure in ${call}, on purpose`);
}

export default source({
  name: 'js-errors',
  config: Config,
  // Where and how it fails is not what it reads: a run that fails and a
  // run that does not share their saved state.
  stateIgnores: ['fail_in', 'kind'],
  check: (cfg) => failOnPurpose(cfg, 'check'),
  streams(cfg) {
    failOnPurpose(cfg, 'discover');
    return [{ name: 's', fields: [field('n', 'int64', { nullable: false })] }];
  },
  partitions(cfg) {
    failOnPurpose(cfg, 'partitions');
    return [{ id: 'all', spec: null }];
  },
  *read(cfg, stream, partition, state) {
    failOnPurpose(cfg, 'open');
    for (let n = state === null ? 0 : state + 1; n < cfg.rows; n++) {
      if (n === Math.floor(cfg.rows / 2)) {
        failOnPurpose(cfg, 'next');
        if (cfg.fail_in === 'next' && cfg.kind === 'bad-row') yield { n: 'not a number' };
      }
      yield { n };
      if (n % 3 === 2) yield checkpoint(n);
    }
  },
});
