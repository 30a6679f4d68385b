// The `switchyard daemon` the app is attached to, as the engine reports it: the
// daemon and its instances (replaced by `daemon_changed`), the one selected with
// its detail from the daemon, its log (polled from the daemon's ring while shown),
// and the calls in flight with their typed errors.
import type { AttachedDaemon } from '../../bindings/AttachedDaemon';
import type { DaemonInstance } from '../../bindings/DaemonInstance';
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { InstanceRow } from '../../bindings/InstanceRow';
import type { LogLine } from '../../bindings/LogLine';
import { ipc, toErrorReport } from '../ipc';
import { LOG_LIMIT, appendLog, type LogSource } from './llama.svelte';

export type DaemonBusy = 'start' | 'stop' | 'restart' | null;

export class DaemonStore implements LogSource {
  /** The daemon of this data folder, or null when none runs. */
  attached = $state<AttachedDaemon | null>(null);
  /** The daemon instance shown in the detail pane (null: one of the app's own). */
  selected = $state<string | null>(null);
  /** The selected instance as the daemon describes it, with its file. */
  detail = $state<DaemonInstance | null>(null);
  busy = $state<Record<string, DaemonBusy>>({});
  errors = $state<Record<string, ErrorReport | null>>({});
  logs = $state<Record<string, LogLine[]>>({});
  reloading = $state(false);
  reloadError = $state<ErrorReport | null>(null);

  get current(): InstanceRow | undefined {
    return this.attached?.instances.find((row) => row.name === this.selected);
  }

  async load(): Promise<void> {
    try {
      this.set(await ipc.attachedDaemon());
    } catch (error) {
      console.warn('Switchyard: cannot ask for a daemon', error);
    }
  }

  /** `daemon_changed`: the daemon came, went, or one of its instances changed. */
  set(daemon: AttachedDaemon | null): void {
    this.attached = daemon;
    if (this.selected !== null && !this.current) {
      this.selected = null;
      this.detail = null;
    }
    if (this.selected !== null) void this.describe(this.selected);
  }

  select(name: string): void {
    this.selected = name;
    if (this.detail?.status.spec.name !== name) this.detail = null;
    void this.describe(name);
  }

  async describe(name: string): Promise<void> {
    try {
      const detail = await ipc.daemonInstance(name);
      if (this.selected === name) this.detail = detail;
    } catch (error) {
      this.errors[name] = toErrorReport(error);
    }
  }

  /** The daemon's lines after those shown (the whole ring the first time). */
  async loadLogs(name: string): Promise<void> {
    const known = this.logs[name] ?? [];
    const since = known.length > 0 ? known[known.length - 1].seq + 1 : 0;
    try {
      const lines = await ipc.daemonLogs(name, since, LOG_LIMIT);
      // Another poll may have added lines meanwhile: append to what is there now.
      const current = this.logs[name] ?? [];
      const next = appendLog(current, lines);
      if (next !== current) this.logs[name] = next;
    } catch (error) {
      console.warn(`Switchyard: cannot read the daemon's log of ${name}`, error);
    }
  }

  async #act(name: string, busy: DaemonBusy, action: () => Promise<unknown>): Promise<boolean> {
    if (this.busy[name]) return false;
    this.busy[name] = busy;
    this.errors[name] = null;
    try {
      await action();
      return true;
    } catch (error) {
      this.errors[name] = toErrorReport(error);
      return false;
    } finally {
      this.busy[name] = null;
      await this.describe(name);
    }
  }

  start(name: string): Promise<boolean> {
    return this.#act(name, 'start', () => ipc.daemonUp(name));
  }

  stop(name: string): Promise<boolean> {
    return this.#act(name, 'stop', () => ipc.daemonDown(name));
  }

  restart(name: string): Promise<boolean> {
    return this.#act(name, 'restart', () => ipc.daemonRestart(name));
  }

  /** The daemon reads its instance files again; the new list arrives as an event. */
  async reload(): Promise<void> {
    this.reloading = true;
    this.reloadError = null;
    try {
      await ipc.daemonReload();
      if (this.selected !== null) await this.describe(this.selected);
    } catch (error) {
      this.reloadError = toErrorReport(error);
    } finally {
      this.reloading = false;
    }
  }
}
