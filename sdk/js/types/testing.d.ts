// Types of `@sluice/sdk/testing`: run a plugin's logic natively.

import type { Commit, Field, FilterPlugin, Row, SinkPlugin, SourcePlugin } from './index.js';

/** Log lines the plugin wrote, as `[level, message]`. */
export const logs: [string, string][];
/** Secrets for native runs: `${secret:name}` in a header becomes the value. */
export function useSecrets(values: Record<string, string>): void;
/** A local directory standing in for the job's `blob` grant. */
export function useBlobRoot(dir: string): void;

export interface ReadResult<State = any> {
  rows: Row[];
  /** The last checkpointed state of each partition, by partition id. */
  states: Record<string, State>;
  /** Batches handed to the host. */
  batches: number;
}
/** Read every partition of `stream` (the first when left out), from `states`. */
export function read<C, State>(
  plugin: SourcePlugin<C, State>,
  config: unknown,
  options?: { stream?: string; states?: Record<string, State> },
): ReadResult<State>;
/** Pass `rows` through a filter as one batch, then `finish`. */
export function runFilter<C>(plugin: FilterPlugin<C>, config: unknown, fields: Field[], rows: Row[]): Row[];
/** Write each batch and commit once, as one task of a run. */
export function write<C>(
  plugin: SinkPlugin<C>,
  config: unknown,
  stream: string,
  fields: Field[],
  batches: Row[][],
  options?: { task?: string; fresh?: boolean },
): { commits: Commit[]; outputs: string[] };
/** The JSON Schema the host validates this plugin's config against. */
export function jsonSchema(plugin: SourcePlugin | FilterPlugin | SinkPlugin): object;
