// Typed config: a plugin describes its config with these builders, which
// give both the JSON Schema the host validates a job's config against and
// the parsed value (defaults filled in) each call gets. In TypeScript the
// value's type follows from the description (`Infer<typeof Config>`).
//
//   const Config = config.object({
//     base_url: config.string({ description: 'The API root' }),
//     page_size: config.integer({ default: 100, minimum: 1 }),
//     token: config.optional(config.string()),
//   });

import { ConfigError } from './errors.js';

function describe(schema, options) {
  if (options.description !== undefined) schema.description = options.description;
  if (options.default !== undefined) schema.default = options.default;
  return schema;
}

function scalar(type, check, options = {}) {
  const extra = {};
  for (const key of ['minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'format']) {
    if (options[key] !== undefined) extra[key] = options[key];
  }
  return {
    default: options.default,
    schema: () => describe({ type, ...extra }, options),
    load(value, path) {
      if (!check(value)) throw new ConfigError(`${path}: expected ${type}, got ${JSON.stringify(value)}`);
      if (options.minimum !== undefined && value < options.minimum) {
        throw new ConfigError(`${path}: ${value} is less than the minimum ${options.minimum}`);
      }
      if (options.maximum !== undefined && value > options.maximum) {
        throw new ConfigError(`${path}: ${value} is more than the maximum ${options.maximum}`);
      }
      if (options.pattern !== undefined && !new RegExp(options.pattern, 'u').test(value)) {
        throw new ConfigError(`${path}: ${JSON.stringify(value)} does not match ${options.pattern}`);
      }
      return value;
    },
  };
}

/** A string. */
export function string(options) {
  return scalar('string', (v) => typeof v === 'string', options);
}

/** A whole number. */
export function integer(options) {
  return scalar('integer', (v) => Number.isInteger(v), options);
}

/** Any number. */
export function number(options) {
  return scalar('number', (v) => typeof v === 'number' && Number.isFinite(v), options);
}

/** `true` or `false`. */
export function boolean(options) {
  return scalar('boolean', (v) => typeof v === 'boolean', options);
}

/** One of the given values. */
export function oneOf(values, options = {}) {
  return {
    default: options.default,
    schema: () => describe({ enum: [...values] }, options),
    load(value, path) {
      if (!values.includes(value)) {
        throw new ConfigError(`${path}: expected one of ${values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(value)}`);
      }
      return value;
    },
  };
}

/** Any JSON value, unchecked. */
export function any(options = {}) {
  return { default: options.default, schema: () => describe({}, options), load: (value) => value };
}

/** A list of `item`s. */
export function list(item, options = {}) {
  return {
    default: options.default,
    schema: () => describe({ type: 'array', items: item.schema() }, options),
    load(value, path) {
      if (!Array.isArray(value)) throw new ConfigError(`${path}: expected a list`);
      return value.map((v, i) => item.load(v, `${path}[${i}]`));
    },
  };
}

/** An object whose keys are free and whose values are `value`s. */
export function map(value, options = {}) {
  return {
    default: options.default,
    schema: () => describe({ type: 'object', additionalProperties: value.schema() }, options),
    load(given, path) {
      if (!isObject(given)) throw new ConfigError(`${path}: expected an object`);
      const out = {};
      for (const [k, v] of Object.entries(given)) out[k] = value.load(v, `${path}.${k}`);
      return out;
    },
  };
}

/** `inner` or nothing: the key may be left out (or be `null`). */
export function optional(inner) {
  return {
    optional: true,
    default: inner.default,
    schema: () => ({ anyOf: [inner.schema(), { type: 'null' }] }),
    load: (value, path) => (value === null || value === undefined ? null : inner.load(value, path)),
  };
}

/** An object with the given keys; unknown keys are refused. A key is
 * required unless it has a `default` or is `optional`. */
export function object(properties, options = {}) {
  return {
    default: options.default,
    schema() {
      const props = {};
      const required = [];
      for (const [key, spec] of Object.entries(properties)) {
        props[key] = spec.schema();
        if (spec.default === undefined && !spec.optional) required.push(key);
      }
      const schema = { type: 'object', properties: props, additionalProperties: false };
      if (required.length) schema.required = required;
      return describe(schema, options);
    },
    load(value, path) {
      if (!isObject(value)) throw new ConfigError(`${path}: expected an object`);
      const unknown = Object.keys(value).filter((k) => !(k in properties)).sort();
      if (unknown.length) throw new ConfigError(`${path}: unknown key \`${unknown[0]}\``);
      const out = {};
      for (const [key, spec] of Object.entries(properties)) {
        if (value[key] !== undefined) out[key] = spec.load(value[key], `${path}.${key}`);
        else if (spec.default !== undefined) out[key] = structuredCopy(spec.default);
        else if (spec.optional) out[key] = null;
        else throw new ConfigError(`${path}.${key} is required`);
      }
      return out;
    },
  };
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function structuredCopy(value) {
  return value !== null && typeof value === 'object' ? JSON.parse(JSON.stringify(value)) : value;
}

/** The config JSON the host passes, checked and filled in by `spec` (any
 * JSON object when the plugin has no config description). */
export function load(spec, text) {
  let value;
  try {
    value = text ? JSON.parse(text) : {};
  } catch (e) {
    throw new ConfigError(`config is not JSON: ${e.message}`);
  }
  return spec ? spec.load(value, 'config') : value;
}

/** What `info()` gives the host: the config's JSON Schema, with the keys
 * saved state ignores under `x-sluice-state-ignores`. */
export function pluginSchema(plugin) {
  const schema = plugin.config ? plugin.config.schema() : { type: 'object' };
  if (plugin.stateIgnores?.length) schema['x-sluice-state-ignores'] = [...plugin.stateIgnores];
  return schema;
}
