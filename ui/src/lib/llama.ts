// Words, tones and small decisions about llama-server instances that only concern
// the display. Anything about memory or configuration comes from the engine.
import type { Breakdown } from '../bindings/Breakdown';
import type { InstanceState } from '../bindings/InstanceState';
import type { LogLine } from '../bindings/LogLine';
import type { Owner } from '../bindings/Owner';
import type { OwnerKind } from '../bindings/OwnerKind';
import type { ServerLogLevel } from '../bindings/ServerLogLevel';
import type { Tone } from './components/Badge.svelte';

/** The parts of a memory breakdown, in the order and words the window shows them. */
export const BREAKDOWN_PARTS: Array<[keyof Breakdown, string]> = [
  ['weights', 'Weights'],
  ['output_layer', 'Output layer'],
  ['kv_cache', 'KV cache'],
  ['compute', 'Compute buffers'],
  ['overhead', 'Runtime'],
];

export const STATE_LABELS: Record<InstanceState, string> = {
  stopped: 'Stopped',
  starting: 'Starting',
  loading: 'Loading',
  healthy: 'Healthy',
  unhealthy: 'Unhealthy',
  crashed: 'Crashed',
  restarting: 'Restarting',
  failed: 'Failed',
  stopping: 'Stopping',
};

export const STATE_TONES: Record<InstanceState, Tone> = {
  stopped: 'neutral',
  starting: 'accent',
  loading: 'accent',
  healthy: 'ok',
  unhealthy: 'warn',
  crashed: 'danger',
  restarting: 'warn',
  failed: 'danger',
  stopping: 'accent',
};

/** Who runs an instance, in the words the engine's messages use. */
export const OWNER_LABELS: Record<OwnerKind, string> = {
  app: 'the Switchyard app',
  daemon: 'the Switchyard daemon',
  cli: 'a switchyard command',
};

/** "Run by the Switchyard daemon (pid 4242)". */
export function ownerText(owner: Owner): string {
  return `Run by ${OWNER_LABELS[owner.kind]} (pid ${owner.pid})`;
}

/** A process exists (or is about to) in this state: stop applies, start does not. */
export function isActive(state: InstanceState): boolean {
  return state !== 'stopped' && state !== 'failed';
}

/** The server answers requests (a chat can be sent). */
export function isServing(state: InstanceState): boolean {
  return state === 'healthy' || state === 'unhealthy';
}

/** The OpenAI-compatible base URL of a running server. */
export function endpointUrl(endpoint: string | null): string | null {
  return endpoint === null ? null : `${endpoint.replace(/\/+$/, '')}/v1`;
}

/** "2 h 05 min", "4 min 12 s", "9 s". */
export function formatUptime(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, '0')} min`;
  if (m > 0) return `${m} min ${String(s).padStart(2, '0')} s`;
  return `${s} s`;
}

/** A new instance's name: `default`, then `default-2`, `default-3`, ... */
export function freshName(taken: string[], base = 'default'): string {
  if (!taken.includes(base)) return base;
  for (let n = 2; ; n++) {
    const name = `${base}-${n}`;
    if (!taken.includes(name)) return name;
  }
}

/** Extra arguments as typed: split on whitespace, quotes keep spaces together. */
export function splitArgs(text: string): string[] {
  const args: string[] = [];
  const pattern = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const match of text.matchAll(pattern)) args.push(match[1] ?? match[2] ?? match[3] ?? '');
  return args;
}

export function joinArgs(args: string[]): string {
  return args.map((arg) => (/\s/.test(arg) ? `"${arg}"` : arg)).join(' ');
}

export type LevelFilter = 'all' | 'info' | 'warning' | 'error';

const LEVEL_RANK: Record<ServerLogLevel, number> = { debug: 0, unknown: 1, info: 1, warning: 2, error: 3 };
const FILTER_RANK: Record<LevelFilter, number> = { all: 0, info: 1, warning: 2, error: 3 };

/** Lines at or above `level` whose text contains `text` (case-insensitive). */
export function filterLog(lines: LogLine[], text: string, level: LevelFilter): LogLine[] {
  const needle = text.trim().toLowerCase();
  const rank = FILTER_RANK[level];
  return lines.filter(
    (line) =>
      LEVEL_RANK[line.level] >= rank &&
      (needle === '' ||
        line.message.toLowerCase().includes(needle) ||
        (line.source ?? '').toLowerCase().includes(needle)),
  );
}

/** JSON with object keys sorted, so two specs compare equal whatever built them. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : item,
  );
}
