// Types of `@sluice/sdk`: write Sluice connectors in TypeScript.

/** A row: column name → value. Decimals, dates and timestamps are strings
 * (`"12.50"`, `"2026-12-07"`, `"2026-12-07T10:00:00Z"`); integers beyond
 * 2^53 are `bigint`; binary is a `Uint8Array` going out, hex coming in. */
export type Row = Record<string, unknown>;

/** One column. `type` is named as a job's `columns:` names it: `int64`,
 * `float64`, `string`, `bool`, `date`, `timestamp`, `timestamptz`,
 * `decimal(15,2)`, `binary`, or Arrow's own syntax. */
export interface Field {
  name: string;
  type: string;
  nullable: boolean;
  metadata: Record<string, string>;
}

/** One column: `field('id', 'int64', { nullable: false })`. */
export function field(name: string, type: string, options?: { nullable?: boolean; metadata?: Record<string, string> }): Field;

/** A stream a source can read, as `discover` reports it. */
export interface Stream {
  name: string;
  fields: Field[];
  primaryKey?: string[];
  cursorFields?: string[];
  /** Whether a run can read only what is new since the last (the source
   * then checkpoints a state and gets it back). */
  incremental?: boolean;
}

/** A slice of a stream one task reads; `spec` is any JSON value the reader
 * needs to find its slice. */
export interface Partition<Spec = unknown> {
  id: string;
  spec: Spec;
}

/** Yielded by a reader: `state` covers every row before it. */
export class Checkpoint<State = unknown> {
  constructor(state: State);
  readonly state: State;
}
export function checkpoint<State>(state: State): Checkpoint<State>;

/** Rows given as equal-length columns. */
export class Columns {
  constructor(columns: Record<string, unknown[]>);
  readonly columns: Record<string, unknown[]>;
  rows(): Row[];
}
export function columns(columns: Record<string, unknown[]>): Columns;

/** What a reader may yield. */
export type ReadItem<State> = Row | Row[] | Columns | Checkpoint<State>;

/** What every plugin says about itself. */
interface PluginBase<C> {
  /** Short name: lowercase letters, digits, '-', '_'. */
  name: string;
  /** The plugin's own semver (default 0.1.0). */
  version?: string;
  /** One line for `sluice plugin list`. */
  description?: string;
  /** The config's description; without one, any JSON object. */
  config?: config.Spec<C>;
  /** Host capabilities it needs: `http`, `blob`, `codec`, `sql`. */
  capabilities?: string[];
  /** Config keys that change how it reads or writes but not what: changing
   * them keeps the job's saved state. */
  stateIgnores?: string[];
}

export interface SourcePlugin<C = any, State = any, Spec = any> extends PluginBase<C> {
  /** Rows a batch holds before it is handed to the host (default 8192). */
  batchRows?: number;
  /** Prove the config and connectivity without reading data. */
  check?(config: C): void;
  /** The streams this source can read. Called before every read: keep it cheap. */
  streams(config: C): Stream[];
  /** Slices of `stream`, given each partition's saved state by id (`null`
   * on a first run). One partition, `all`, by default. */
  partitions?(config: C, stream: Required<Stream>, states: Record<string, State> | null): Partition<Spec>[];
  /** The rows of one partition, from `state` (the last checkpoint's, or `null`). */
  read(config: C, stream: Required<Stream>, partition: Partition<Spec>, state: State | null): Iterable<ReadItem<State>>;
}

/** One task's transform. */
export interface Transform {
  /** One row in: the row, a changed row, `null` to drop it, or several rows. */
  map?(row: Row): Row | Row[] | null | undefined;
  /** One batch in, any number of rows out (instead of `map`). */
  process?(rows: Row[]): Row[];
  /** Rows held back, emitted after the last batch. */
  finish?(): Row[];
}

export interface FilterPlugin<C = any> extends PluginBase<C> {
  /** The columns of the rows this filter returns, given its input's (the same by default). */
  outputFields?(config: C, fields: Field[]): Field[];
  /** One task's transform (for filters that keep state across rows). */
  open?(config: C, fields: Field[]): Transform;
  /** A stateless filter's row function (when there is no `open`). */
  map?(row: Row, config: C): Row | Row[] | null | undefined;
}

/** What a writer's commit made durable, for the run summary. */
export interface Commit {
  rows?: number;
  bytes?: number;
  outputs?: string[];
}

/** One task's writer. */
export interface Writer {
  /** Take one batch of rows. */
  write(rows: Row[]): void;
  /** Make what was written since the last commit durable and visible;
   * nothing returned reports the rows written since then. */
  commit?(): Commit | void;
  /** Discard everything written. */
  abort?(): void;
}

export interface SinkPlugin<C = any> extends PluginBase<C> {
  check?(config: C): void;
  /** Before any writer of `stream` opens; `fresh`: start over. */
  beginStream?(config: C, stream: string, fresh: boolean): void;
  /** After every task committed: publish what the commits staged. */
  finishStream?(config: C, stream: string): string[] | void;
  /** A writer for one task (`task` is unique in the run). */
  open(config: C, stream: string, fields: Field[], task: string): Writer;
}

export type Defined<P, K extends string> = Readonly<P & { kind: K }>;

/** A source: make it the module's default export. */
export function source<C = Record<string, unknown>, State = any, Spec = any>(plugin: SourcePlugin<C, State, Spec>): Defined<SourcePlugin<C, State, Spec>, 'source'>;
/** A filter: make it the module's default export. */
export function filter<C = Record<string, unknown>>(plugin: FilterPlugin<C>): Defined<FilterPlugin<C>, 'filter'>;
/** A sink: make it the module's default export. */
export function sink<C = Record<string, unknown>>(plugin: SinkPlugin<C>): Defined<SinkPlugin<C>, 'sink'>;

/** Base of the typed errors; `kind` is the WIT `error-kind`. */
export class SluiceError extends Error {
  readonly kind: 'config' | 'auth' | 'transient' | 'data' | 'internal';
}
/** The config is wrong: never retried. */
export class ConfigError extends SluiceError {}
/** Credentials were refused: never retried. */
export class AuthError extends SluiceError {}
/** Worth retrying: a dropped connection, a throttled request. */
export class TransientError extends SluiceError {}
/** The data is bad: a malformed row, a value that does not fit. */
export class DataError extends SluiceError {}
/** A bug in the plugin, said on purpose. */
export class InternalError extends SluiceError {}

/** The contract this SDK builds against. */
export const WIT_VERSION: string;

/** Config descriptions: the JSON Schema and the parsed type in one. */
export namespace config {
  /** A description of a config value of type `T`. */
  interface Spec<T> {
    readonly default?: T;
    readonly optional?: boolean;
    schema(): object;
    load(value: unknown, path: string): T;
  }
  /** The type a description gives: `type Config = config.Infer<typeof Config>`. */
  type Infer<S> = S extends Spec<infer T> ? T : never;
  interface Options<T> {
    description?: string;
    default?: T;
  }
  interface NumberOptions extends Options<number> {
    minimum?: number;
    maximum?: number;
  }
  interface StringOptions extends Options<string> {
    minLength?: number;
    maxLength?: number;
    pattern?: string;
    format?: string;
  }
  function string(options?: StringOptions): Spec<string>;
  function integer(options?: NumberOptions): Spec<number>;
  function number(options?: NumberOptions): Spec<number>;
  function boolean(options?: Options<boolean>): Spec<boolean>;
  function oneOf<const V extends readonly (string | number | boolean)[]>(values: V, options?: Options<V[number]>): Spec<V[number]>;
  function any(options?: Options<unknown>): Spec<unknown>;
  function list<T>(item: Spec<T>, options?: Options<T[]>): Spec<T[]>;
  function map<T>(value: Spec<T>, options?: Options<Record<string, T>>): Spec<Record<string, T>>;
  function optional<T>(inner: Spec<T>): Spec<T | null>;
  function object<P extends Record<string, Spec<any>>>(
    properties: P,
    options?: Options<{ [K in keyof P]: Infer<P[K]> }>,
  ): Spec<{ [K in keyof P]: Infer<P[K]> }>;
  /** Parse config JSON the way the component does. */
  function load<T>(spec: Spec<T> | undefined, text: string): T;
}

/** Outgoing HTTP through `wasi:http`, to the hosts the job grants.
 * Synchronous, like every contract call. */
export namespace http {
  interface RequestOptions {
    /** Added to the URL's query. */
    params?: Record<string, string | number | boolean>;
    /** `${secret:name}` in a value is filled in by the host. */
    headers?: Record<string, string>;
    body?: Uint8Array | string;
    /** Sent as JSON (with `content-type: application/json`). */
    json?: unknown;
    /** Seconds to connect, to the first byte, and between bytes. */
    timeout?: number;
  }
  class Response {
    readonly status: number;
    /** Lower-case names; repeated headers joined by `, `. */
    readonly headers: Record<string, string>;
    readonly body: Uint8Array;
    readonly url: string;
    text(): string;
    json<T = any>(): T;
    /** Throw the typed error a status means: 401/403 `AuthError`,
     * 408/429/5xx `TransientError`, other 4xx `DataError`. */
    raiseForStatus(): this;
  }
  function request(method: string, url: string, options?: RequestOptions): Response;
  function get(url: string, options?: RequestOptions): Response;
  function post(url: string, options?: RequestOptions): Response;
}

/** Object storage through the job's `blob` grant. */
export namespace blob {
  interface ObjectInfo {
    path: string;
    size: number;
    modifiedMs: number;
  }
  function list(pattern?: string, startAfter?: string): ObjectInfo[];
  function stat(path: string): ObjectInfo | null;
  function read(path: string, offset?: number, length?: number): Uint8Array;
  function readText(path: string): string;
  function write(path: string, data: Uint8Array | string): void;
  function rename(from: string, to: string): void;
  function remove(path: string): void;
}

/** Lines in `sluice run`'s log, tagged with the plugin's name. */
export namespace log {
  function trace(message: unknown): void;
  function debug(message: unknown): void;
  function info(message: unknown): void;
  function warn(message: unknown): void;
  function error(message: unknown): void;
}
