// The model library: installed models, downloads and disk use. Queried once at
// start, then patched by `download_changed` and replaced by `models_changed`.
import type { AddModel } from '../../bindings/AddModel';
import type { DiskUsage } from '../../bindings/DiskUsage';
import type { DownloadStatus } from '../../bindings/DownloadStatus';
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { InstalledModel } from '../../bindings/InstalledModel';
import { ipc, toErrorReport } from '../ipc';
import { isFinalState } from '../models';

/** How long a complete or cancelled download stays in the list, showing how it ended. */
export const FINAL_ROW_MS = 4000;

export interface ModelsStoreOptions {
  /** Overrides FINAL_ROW_MS (tests). */
  finalRowMs?: number;
}

export class ModelsStore {
  models = $state<InstalledModel[]>([]);
  /** Oldest first, as they were started (or listed at start-up). */
  downloads = $state<DownloadStatus[]>([]);
  disk = $state<DiskUsage | null>(null);
  /** Why the library could not be read (list_models failed). */
  error = $state<ErrorReport | null>(null);
  /** The first query has answered (with models or an error). */
  loaded = $state(false);

  readonly #finalRowMs: number;
  readonly #removals = new Map<string, ReturnType<typeof setTimeout>>();
  /** Downloads that ended: a listing older than their last event must not bring them back. */
  readonly #ended = new Set<string>();
  /** `models_changed` already arrived: it is newer than any query still on its way. */
  #modelsFromEvent = false;
  #diskLoading = false;
  #diskAgain = false;

  constructor(options: ModelsStoreOptions = {}) {
    this.#finalRowMs = options.finalRowMs ?? FINAL_ROW_MS;
  }

  /** Queries models, downloads and disk use once. */
  async load(): Promise<void> {
    const [models, downloads] = await Promise.allSettled([ipc.listModels(), ipc.listDownloads(), this.refreshDisk()]);
    if (models.status === 'fulfilled') {
      if (!this.#modelsFromEvent) this.models = models.value;
      this.error = null;
    } else if (!this.#modelsFromEvent) {
      this.error = toErrorReport(models.reason);
    }
    if (downloads.status === 'fulfilled') this.#addListed(downloads.value);
    else console.warn('Switchyard: cannot list downloads', downloads.reason);
    this.loaded = true;
  }

  /** `models_changed`: the engine's whole list replaces ours. */
  setModels(models: InstalledModel[]): void {
    this.models = models;
    this.#modelsFromEvent = true;
    this.error = null;
    this.loaded = true;
    void this.refreshDisk();
  }

  /** `download_changed`: one download's new status, matched by id. */
  applyDownload(status: DownloadStatus): void {
    const index = this.downloads.findIndex((download) => download.id === status.id);
    const previous = index >= 0 ? this.downloads[index] : undefined;
    if (index >= 0) this.downloads[index] = status;
    else this.downloads.push(status);

    this.#clearRemoval(status.id);
    if (isFinalState(status.state)) {
      this.#ended.add(status.id);
      // Keep the row a moment so people see how it ended, then let it go.
      const timer = setTimeout(() => {
        this.#removals.delete(status.id);
        this.downloads = this.downloads.filter((download) => download.id !== status.id || !isFinalState(download.state));
      }, this.#finalRowMs);
      this.#removals.set(status.id, timer);
    } else {
      this.#ended.delete(status.id);
    }

    // Settled (paused, failed, complete, cancelled): partial files grew or went away.
    const moving = status.state === 'downloading' || status.state === 'verifying';
    if (!moving && previous?.state !== status.state) void this.refreshDisk();
  }

  /** Re-reads disk use; calls made while one is on its way are folded into one more. */
  async refreshDisk(): Promise<void> {
    if (this.#diskLoading) {
      this.#diskAgain = true;
      return;
    }
    this.#diskLoading = true;
    try {
      do {
        this.#diskAgain = false;
        try {
          this.disk = await ipc.diskUsage();
        } catch (error) {
          console.warn('Switchyard: cannot read disk use', error);
        }
      } while (this.#diskAgain);
    } finally {
      this.#diskLoading = false;
    }
  }

  /** Starts a download; resolves to the model's id. Rejects with an ErrorReport. */
  async add(add: AddModel): Promise<string> {
    const id = await ipc.addModel(add);
    this.#ended.delete(id);
    // Its first event may still be on its way: ask, so the row shows at once.
    try {
      this.#addListed(await ipc.listDownloads());
    } catch (error) {
      console.warn('Switchyard: cannot list downloads', error);
    }
    return id;
  }

  pause(id: string): Promise<null> {
    return ipc.pauseDownload(id);
  }

  resume(id: string): Promise<null> {
    return ipc.resumeDownload(id);
  }

  cancel(id: string): Promise<null> {
    return ipc.cancelDownload(id);
  }

  /** Resolves when every file matches its SHA-256; rejects with CHECKSUM_MISMATCH otherwise. */
  verify(id: string): Promise<null> {
    return ipc.verifyModel(id);
  }

  /** Deletes a model and its files. `models_changed` follows; the row goes at once. */
  async remove(id: string): Promise<void> {
    await ipc.deleteModel(id);
    this.models = this.models.filter((model) => model.id !== id);
    void this.refreshDisk();
  }

  /** Stops the timers that clear finished rows (tests, teardown). */
  dispose(): void {
    for (const timer of this.#removals.values()) clearTimeout(timer);
    this.#removals.clear();
  }

  /** Adds listed downloads we do not know yet. Events are newer than any listing. */
  #addListed(listed: DownloadStatus[]): void {
    for (const status of listed) {
      if (this.#ended.has(status.id)) continue;
      if (this.downloads.some((download) => download.id === status.id)) continue;
      this.downloads.push(status);
    }
  }

  #clearRemoval(id: string): void {
    const timer = this.#removals.get(id);
    if (timer !== undefined) clearTimeout(timer);
    this.#removals.delete(id);
  }
}
