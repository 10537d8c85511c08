import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, field } from '@sluice/sdk';
import { jsonSchema, runFilter } from '@sluice/sdk/testing';
import plugin, { mask } from '../src/app.ts';

const fields = [field('id', 'int64'), field('email', 'string')];

test('masks the user part and keeps the domain', () => {
  assert.equal(mask('user@corp.jp', 1), 'u***@corp.jp');
  assert.equal(mask('ab@x.y', 5), 'ab***@x.y');
  assert.equal(mask('no-at-sign', 1), '***');
});

test('drops test accounts, whatever their case, and keeps nulls', () => {
  const rows = [
    { id: 1, email: 'alice@corp.jp' },
    { id: 2, email: 'QA@Example.COM' },
    { id: 3, email: null },
  ];
  assert.deepEqual(runFilter(plugin, {}, fields, rows), [
    { id: 1, email: 'a***@corp.jp' },
    { id: 3, email: null },
  ]);
});

test('a column that is not there is a config error naming what is', () => {
  assert.throws(
    () => runFilter(plugin, { email: 'mail' }, fields, []),
    (e: unknown) => e instanceof ConfigError && e.message.includes('has id, email'),
  );
  assert.throws(() => runFilter(plugin, { keep_first: -1 }, fields, []), ConfigError);
});

test('the config schema documents its keys and defaults', () => {
  const schema = jsonSchema(plugin) as { properties: Record<string, { default?: unknown }> };
  assert.deepEqual(schema.properties.drop_domains.default, ['@example.com']);
});
