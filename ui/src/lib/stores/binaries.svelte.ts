// The Binary setup cards' data: per program, the status the engine last validated,
// a bounded live log of `binary_log` events, download progress from
// `binary_download`, and the set-up call in flight.
import type { BinaryKind } from '../../bindings/BinaryKind';
import type { BinaryLog } from '../../bindings/BinaryLog';
import type { BinaryStatus } from '../../bindings/BinaryStatus';
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { Variant } from '../../bindings/Variant';
import { ipc, toErrorReport } from '../ipc';

/** Log lines kept per program: enough for a full setup with every fallback. */
export const BINARY_LOG_LIMIT = 200;

export interface BinaryLogLine extends BinaryLog {
  /** Stable key for the list: lines are only ever appended. */
  seq: number;
  receivedAtMs: number;
}

export interface BinaryDownloadProgress {
  variant: Variant;
  file: string;
  bytes: number;
  total: number | null;
}

/** One program's setup. */
export class BinarySetup {
  readonly kind: BinaryKind;
  status = $state<BinaryStatus | null>(null);
  /** Oldest first; at most BINARY_LOG_LIMIT lines. */
  log = $state<BinaryLogLine[]>([]);
  /** The file being downloaded now; null when none is. */
  download = $state<BinaryDownloadProgress | null>(null);
  busy = $state(false);
  /** Why the last set-up failed, as the engine said it. */
  error = $state<ErrorReport | null>(null);
  /** The first status query has answered. */
  loaded = $state(false);
  #seq = 0;

  constructor(kind: BinaryKind) {
    this.kind = kind;
  }

  /** Asks the engine which binary is in use (no test runs). */
  async loadStatus(): Promise<void> {
    try {
      this.status = await ipc.binaryStatus(this.kind);
    } catch (error) {
      console.warn(`Switchyard: cannot read the ${this.kind} status`, error);
    } finally {
      this.loaded = true;
    }
  }

  /** Sets up, or with `force` re-runs every test. Never throws: errors land in `error`. */
  async ensure(force: boolean): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.error = null;
    try {
      this.status = await ipc.ensureBinary(this.kind, force);
    } catch (error) {
      this.error = toErrorReport(error);
    } finally {
      this.busy = false;
      this.download = null;
    }
  }

  appendLog(line: BinaryLog, nowMs = Date.now()): void {
    const next = [...this.log, { ...line, seq: this.#seq++, receivedAtMs: nowMs }];
    this.log = next.length > BINARY_LOG_LIMIT ? next.slice(next.length - BINARY_LOG_LIMIT) : next;
    // Past the download (unpacking, testing, or the outcome): its bar has done its job.
    if (line.step !== 'download') this.download = null;
  }

  applyDownload(progress: BinaryDownloadProgress): void {
    this.download = progress;
  }
}

export class BinariesStore {
  readonly llama_server = new BinarySetup('llama_server');
  readonly diffusion = new BinarySetup('diffusion');

  of(kind: BinaryKind): BinarySetup {
    return kind === 'llama_server' ? this.llama_server : this.diffusion;
  }

  /** Both programs' status. Also after a settings change: a new custom path is a
   * different binary, and only the engine knows whether it was validated. */
  async load(): Promise<void> {
    await Promise.all([this.llama_server.loadStatus(), this.diffusion.loadStatus()]);
  }

  applyLog(line: BinaryLog): void {
    this.of(line.kind).appendLog(line);
  }

  applyDownload(event: BinaryDownloadProgress & { kind: BinaryKind }): void {
    const { kind, ...progress } = event;
    this.of(kind).applyDownload(progress);
  }
}
