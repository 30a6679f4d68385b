// Display helpers: numbers and names as people read them. No engine logic here.
import type { GpuBackend } from '../bindings/GpuBackend';
import type { GpuVendor } from '../bindings/GpuVendor';
import type { RunsOn } from '../bindings/RunsOn';
import type { ServiceState } from '../bindings/ServiceState';

const GIB = 2 ** 30;
const MIB = 2 ** 20;

/** Bytes as GiB with one decimal. The end-to-end test recomputes this exactly. */
export function formatGiB(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(1) + ' GiB';
}

/** Bytes in the unit that reads best: MiB below 1 GiB, GiB above. */
export function formatBytes(bytes: number): string {
  if (bytes >= GIB) return formatGiB(bytes);
  if (bytes >= MIB) return `${Math.round(bytes / MIB)} MiB`;
  return `${Math.max(0, Math.round(bytes / 1024))} KiB`;
}

/** A whole percentage, or a dash when unknown. */
export function formatPercent(percent: number | null | undefined): string {
  if (percent === null || percent === undefined || !Number.isFinite(percent)) return '—';
  return `${Math.round(Math.min(100, Math.max(0, percent)))}%`;
}

/** `used / total` clamped to 0..1 (0 when the total is unknown). */
export function fraction(used: number, total: number): number {
  if (!(total > 0) || !Number.isFinite(used)) return 0;
  return Math.min(1, Math.max(0, used / total));
}

/** A count, or a dash when the OS did not tell. */
export function formatCount(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : String(value);
}

/** "just now", "5s ago", "3m ago", "2h ago" for a past moment. */
export function formatAgo(thenMs: number, nowMs: number): string {
  const seconds = Math.max(0, Math.floor((nowMs - thenMs) / 1000));
  if (seconds < 2) return 'just now';
  if (seconds < 60) return `${seconds}s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ago`;
  return `${Math.floor(minutes / 60)}h ago`;
}

/** A clock time like 14:03:27 for event logs and tooltips. */
export function formatClock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

const VENDORS: Record<GpuVendor, string> = { nvidia: 'NVIDIA', amd: 'AMD', apple: 'Apple' };
const BACKENDS: Record<GpuBackend, string> = {
  cuda: 'CUDA',
  rocm: 'ROCm',
  vulkan: 'Vulkan',
  metal: 'Metal',
};
const STATES: Record<ServiceState, string> = {
  stopped: 'Stopped',
  starting: 'Starting',
  running: 'Running',
  failed: 'Failed',
};

export const vendorLabel = (vendor: GpuVendor): string => VENDORS[vendor] ?? vendor;
export const backendLabel = (backend: GpuBackend): string => BACKENDS[backend] ?? backend;
export const stateLabel = (state: ServiceState): string => STATES[state] ?? state;

const RUNS_ON: Record<RunsOn, string> = {
  gpu: 'Runs on GPU',
  unified_memory: 'Unified memory',
  cpu: 'Runs on CPU',
};
export const runsOnLabel = (runsOn: RunsOn): string => RUNS_ON[runsOn] ?? runsOn;
