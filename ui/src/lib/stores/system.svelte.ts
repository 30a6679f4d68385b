// What the engine knows about this machine: queried once, then patched by samples.
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { GpuMemory } from '../../bindings/GpuMemory';
import type { SystemInfo } from '../../bindings/SystemInfo';
import type { SystemSample } from '../../bindings/SystemSample';
import { ipc, toErrorReport } from '../ipc';

/** How many readings the history keeps (five minutes at one sample per 2 s). */
export const HISTORY_LENGTH = 150;

/** One reading, kept for the Resource Monitor's charts. */
export interface HistoryPoint {
  sampled_at_ms: number;
  cpu_usage_percent: number | null;
  ram_used_bytes: number;
  ram_total_bytes: number;
  gpus: GpuMemory[];
}

export class SystemStore {
  info = $state<SystemInfo | null>(null);
  error = $state<ErrorReport | null>(null);
  /** Unknown until the first sample: the snapshot does not carry it. */
  cpuUsagePercent = $state<number | null>(null);
  history = $state<HistoryPoint[]>([]);
  /** A sample that arrived before the snapshot; applied if it is newer. */
  #early: SystemSample | null = null;

  /** Queries the engine once. Errors stay in `error` for the System tab. */
  async load(): Promise<void> {
    try {
      this.setInfo(await ipc.systemInfo());
    } catch (error) {
      this.error = toErrorReport(error);
    }
  }

  setInfo(info: SystemInfo): void {
    this.info = info;
    this.error = null;
    this.history = [pointOf(info.sampled_at_ms, null, info.memory.used_bytes, info.memory.total_bytes, info.gpus.map((gpu) => gpu.memory))];
    const early = this.#early;
    this.#early = null;
    if (early) this.applySample(early);
  }

  /** Replaces memory, CPU usage, each GPU's memory (matched by index) and the time. */
  applySample(sample: SystemSample): void {
    const info = this.info;
    if (!info) {
      this.#early = sample;
      return;
    }
    if (sample.sampled_at_ms < info.sampled_at_ms) return; // stale, out of order
    info.memory = sample.memory;
    for (const memory of sample.gpus) {
      const gpu = info.gpus.find((candidate) => candidate.index === memory.index);
      if (gpu) gpu.memory = memory;
    }
    info.sampled_at_ms = sample.sampled_at_ms;
    this.cpuUsagePercent = sample.cpu_usage_percent;
    const point = pointOf(
      sample.sampled_at_ms,
      sample.cpu_usage_percent,
      sample.memory.used_bytes,
      sample.memory.total_bytes,
      sample.gpus,
    );
    this.history = [...this.history, point].slice(-HISTORY_LENGTH);
  }
}

function pointOf(
  sampled_at_ms: number,
  cpu_usage_percent: number | null,
  ram_used_bytes: number,
  ram_total_bytes: number,
  gpus: GpuMemory[],
): HistoryPoint {
  return { sampled_at_ms, cpu_usage_percent, ram_used_bytes, ram_total_bytes, gpus };
}
