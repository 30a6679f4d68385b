// The Resource Monitor's event log: which engine events it keeps, and their words.
import type { EngineEvent } from '../bindings/EngineEvent';
import type { OrchestratorPhase } from '../bindings/OrchestratorPhase';
import { formatBytes, formatMemory } from './format';

/** How many log lines the monitor keeps. */
export const LOG_CAPACITY = 300;

export type LogLevel = 'info' | 'ok' | 'warn' | 'error';
export type LogSource = 'orchestrator' | 'llm' | 'image';

export interface MonitorLogEntry {
  seq: number;
  at_ms: number;
  source: LogSource;
  /** What happened, for `data-kind`: `offloaded`, `reloaded`, `model_loaded`, `llm_healthy`, `image_complete`, ... */
  kind: string;
  level: LogLevel;
  text: string;
}

function names(instances: string[]): string {
  return instances.length === 0 ? 'the LLM' : instances.join(', ');
}

/** The log line for an engine event, or `null` for events the log does not show. */
export function logEntryOf(event: EngineEvent, seq: number, now: number): MonitorLogEntry | null {
  switch (event.type) {
    case 'orchestrator': {
      const base = { seq, at_ms: now, source: 'orchestrator' as const, kind: event.kind };
      switch (event.kind) {
        case 'offloaded': {
          const cut =
            event.cut_requests > 0
              ? `; ${event.cut_requests} answer(s) still being written were cut (sent again when it is back)`
              : '';
          return {
            ...base,
            level: 'warn',
            text: `Offloaded ${names(event.instances)}: answers under way finished in ${event.drain_ms} ms${cut}, stopped in ${event.stop_ms} ms: ${event.reason}`,
          };
        }
        case 'window_yielded':
          return {
            ...base,
            level: 'info',
            text: `Images paused after ${(event.window_ms / 1000).toFixed(1)} s: ${event.waiting_requests} chat request(s) waiting get the LLM first`,
          };
        case 'reloading':
          return { ...base, level: 'info', text: `Reloading ${names(event.instances)} (attempt ${event.attempt})` };
        case 'reloaded':
          return {
            ...base,
            level: 'ok',
            text: `Reloaded ${names(event.instances)} in ${event.start_ms} ms (memory free after ${event.memory_wait_ms} ms); chat was paused ${(event.paused_ms / 1000).toFixed(1)} s`,
          };
        case 'reload_failed':
          return { ...base, level: 'error', text: `Reload of ${names(event.instances)} failed: ${event.error.message}` };
        case 'model_loaded':
          return {
            ...base,
            level: 'ok',
            text: `Loaded ${event.instance} in ${(event.load_ms / 1000).toFixed(1)} s (${formatMemory(event.ram_bytes, event.vram_bytes)}): ${event.reason}`,
          };
        case 'model_unloaded':
          return {
            ...base,
            level: 'info',
            text: `Unloaded ${event.instance}, freeing ${formatMemory(event.ram_bytes, event.vram_bytes)}: ${event.reason}`,
          };
        case 'model_load_failed':
          return { ...base, level: 'error', text: `Could not load ${event.instance}: ${event.error.message}` };
      }
      return null;
    }
    case 'llama_slots': {
      const saving = event.action === 'save';
      const problems = event.problems.length > 0 ? `; not ${saving ? 'saved' : 'restored'}: ${event.problems.join('; ')}` : '';
      const evicted = event.evicted_files > 0 ? `; ${event.evicted_files} older file(s) deleted for the disk budget` : '';
      const done =
        event.slots > 0
          ? `${saving ? 'saved' : 'restored'} ${event.slots} conversation(s) (${event.tokens} tokens, ${formatBytes(event.bytes)}) in ${event.elapsed_ms} ms`
          : `${saving ? 'saved' : 'restored'} no conversation`;
      return {
        seq,
        at_ms: now,
        source: 'llm',
        kind: saving ? 'llm_slots_saved' : 'llm_slots_restored',
        level: event.problems.length > 0 ? 'warn' : 'ok',
        text: `LLM ${event.instance}: ${done}${problems}${evicted}`,
      };
    }
    case 'llama_state': {
      const level: LogLevel =
        event.to === 'failed' || event.to === 'crashed' ? 'error' : event.to === 'healthy' ? 'ok' : 'info';
      const reason = event.reason ? `: ${event.reason}` : '';
      return {
        seq,
        at_ms: event.at_ms || now,
        source: 'llm',
        kind: `llm_${event.to}`,
        level,
        text: `LLM ${event.name}: ${event.from} → ${event.to}${reason}`,
      };
    }
    case 'image_job_changed': {
      // Progress is not news; only finished jobs are logged.
      if (event.status === 'pending' || event.status === 'running') return null;
      const level: LogLevel = event.status === 'complete' ? 'ok' : event.status === 'error' ? 'error' : 'warn';
      const detail = event.error ? `: ${event.error.message}` : '';
      return {
        seq,
        at_ms: now,
        source: 'image',
        kind: `image_${event.status}`,
        level,
        text: `Image job ${event.id} ${event.status}${detail}`,
      };
    }
    case 'image_server_changed':
      return {
        seq,
        at_ms: now,
        source: 'image',
        kind: event.server ? 'image_server_started' : 'image_server_stopped',
        level: 'info',
        text: event.server ? `Image server started on port ${event.server.port}` : 'Image server stopped',
      };
    default:
      return null;
  }
}

/** Appends keeping the last `capacity`. */
export function appendBounded<T>(list: T[], item: T, capacity: number): T[] {
  const next = list.length >= capacity ? list.slice(list.length - capacity + 1) : list.slice();
  next.push(item);
  return next;
}

export const PHASE_LABELS: Record<OrchestratorPhase, string> = {
  idle: 'Idle',
  offloaded: 'LLM offloaded',
  reloading: 'Reloading LLM',
  reload_failed: 'Reload failed',
};

/** "An image now would pause chat for ~N s" (after the answers under way, up to M s)
 *  or "No offload needed: X % of RAM". */
export function predictionText(prediction: {
  needs_offload: boolean;
  projected_share: number;
  bottleneck_is_vram: boolean;
  predicted_pause_secs: number;
  answers_in_progress: number;
  drain_wait_secs: number;
}): string {
  const where = prediction.bottleneck_is_vram ? 'VRAM' : 'RAM';
  const share = Number.isFinite(prediction.projected_share) ? `${Math.round(prediction.projected_share * 100)} %` : '—';
  if (prediction.needs_offload) {
    const pause = `An image now would pause chat for ~${Math.max(1, Math.round(prediction.predicted_pause_secs))} s (${share} of ${where})`;
    if (prediction.answers_in_progress > 0) {
      return `${pause}, after the ${prediction.answers_in_progress} answer(s) being written (up to ${Math.round(prediction.drain_wait_secs)} s)`;
    }
    return pause;
  }
  return `No offload needed: ${share} of ${where}`;
}

/** One line of a monitor chart. */
export interface ChartSeries {
  label: string;
  /** One value per time, `null` for a gap. */
  values: (number | null)[];
}
