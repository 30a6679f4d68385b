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

const KIB = 2 ** 10;
const TIB = 2 ** 40;

/**
 * Bytes in the binary unit that reads best: B, KiB, MiB (whole numbers), then GiB
 * with one decimal exactly as `formatGiB`, then TiB.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes <= 0) return '0 B';
  if (bytes >= TIB) return `${(bytes / TIB).toFixed(1)} TiB`;
  if (bytes >= GIB) return formatGiB(bytes);
  if (bytes >= MIB) return `${Math.round(bytes / MIB)} MiB`;
  if (bytes >= KIB) return `${Math.round(bytes / KIB)} KiB`;
  return `${Math.round(bytes)} B`;
}

/** RAM and, when any is used, VRAM: "1.3 GiB RAM" or "512 MiB RAM · 2.0 GiB VRAM". */
export function formatMemory(ramBytes: number, vramBytes: number): string {
  const ram = `${formatBytes(ramBytes)} RAM`;
  return vramBytes > 0 ? `${ram} · ${formatBytes(vramBytes)} VRAM` : ram;
}

/** Bytes per second, e.g. "12.3 MiB/s"; a dash when unknown. */
export function formatSpeed(bytesPerSecond: number | null | undefined): string {
  if (bytesPerSecond === null || bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) {
    return '—';
  }
  if (bytesPerSecond >= GIB) return `${(bytesPerSecond / GIB).toFixed(1)} GiB/s`;
  if (bytesPerSecond >= MIB) return `${(bytesPerSecond / MIB).toFixed(1)} MiB/s`;
  if (bytesPerSecond >= KIB) return `${Math.round(bytesPerSecond / KIB)} KiB/s`;
  return `${Math.round(bytesPerSecond)} B/s`;
}

/** Generation speed as people read it: "under 1 token/s", "about 3 tokens/s",
 *  "about 140 tokens/s" (two significant digits: no prediction is finer); a dash
 *  when unknown. */
export function formatTokensPerSecond(tokensPerSecond: number | null | undefined): string {
  if (tokensPerSecond === null || tokensPerSecond === undefined || !Number.isFinite(tokensPerSecond) || tokensPerSecond < 0) {
    return '—';
  }
  if (tokensPerSecond < 1) return 'under 1 token/s';
  if (tokensPerSecond < 1.5) return 'about 1 token/s';
  if (tokensPerSecond < 10) return `about ${Math.round(tokensPerSecond)} tokens/s`;
  const magnitude = 10 ** (Math.floor(Math.log10(tokensPerSecond)) - 1);
  return `about ${Math.round(tokensPerSecond / magnitude) * magnitude} tokens/s`;
}

/** Memory bandwidth in decimal gigabytes per second, as vendors state it: "11.7 GB/s". */
export function formatBandwidth(bytesPerSecond: number | null | undefined): string {
  if (bytesPerSecond === null || bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) {
    return '—';
  }
  return `${(bytesPerSecond / 1e9).toFixed(1)} GB/s`;
}

/** Time left, e.g. "45 s", "2 min 5 s", "1 h 3 min", "2 d 4 h"; a dash when unknown. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '—';
  const total = Math.round(seconds);
  if (total < 60) return `${total} s`;
  const pair = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small > 0 ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`;
  if (total < 3600) return pair(Math.floor(total / 60), 'min', total % 60, 's');
  const minutes = Math.round(total / 60);
  if (minutes < 24 * 60) return pair(Math.floor(minutes / 60), 'h', minutes % 60, 'min');
  const hours = Math.round(minutes / 60);
  return pair(Math.floor(hours / 24), 'd', hours % 24, 'h');
}

const COUNT_UNITS = [
  { size: 1e12, suffix: 'T' },
  { size: 1e9, suffix: 'B' },
  { size: 1e6, suffix: 'M' },
  { size: 1e3, suffix: 'K' },
] as const;

/** A parameter count with three significant digits: "8.03 B", "567 M", "1.5 T". */
export function formatParams(count: number | null | undefined): string {
  if (count === null || count === undefined || !Number.isFinite(count) || count < 0) return '—';
  for (let i = 0; i < COUNT_UNITS.length; i++) {
    const unit = COUNT_UNITS[i]!;
    if (count < unit.size) continue;
    const rounded = Number((count / unit.size).toPrecision(3));
    // 999.6 M rounds to 1000 M: say 1 B instead.
    const bigger = COUNT_UNITS[i - 1];
    if (rounded >= 1000 && bigger) return `${Number((count / bigger.size).toPrecision(3))} ${bigger.suffix}`;
    return `${rounded} ${unit.suffix}`;
  }
  return String(Math.round(count));
}

/** How far a transfer is, as a whole percentage rounded down (100 only when done). */
export function progressPercent(bytes: number, total: number | null | undefined): number | null {
  if (total === null || total === undefined || !(total > 0)) return null;
  return Math.min(100, Math.max(0, Math.floor((bytes / total) * 100)));
}

// Formatters are built once: `toLocale…String` with options builds a new
// Intl formatter on every call, which in WebKit costs milliseconds — the idle bench
// measured the clock on the System tab alone at ~2 % of a core (one call per sample).
const DATE_FORMAT = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const CLOCK_FORMAT = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** A calendar date such as "3 Mar 2025" in the reader's locale. */
export function formatDate(ms: number): string {
  return DATE_FORMAT.format(ms);
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

/** A clock time like 14:03:27 for event logs and tooltips. */
export function formatClock(ms: number): string {
  return CLOCK_FORMAT.format(ms);
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
  stopping: 'Stopping',
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
