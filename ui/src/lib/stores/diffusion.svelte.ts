// The Diffusion tab's data: the image server (from `image_server` and
// `image_server_changed`), the window's own generation (its progress from
// `image_job_changed`), and the gallery of finished images. Events never carry
// images: a job's PNGs are fetched once, by `image_job`, when it is complete.
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { ImageRequest } from '../../bindings/ImageRequest';
import type { ImageServerInfo } from '../../bindings/ImageServerInfo';
import type { JobError } from '../../bindings/JobError';
import type { JobSummary } from '../../bindings/JobSummary';
import type { JobView } from '../../bindings/JobView';
import { ipc, toErrorReport } from '../ipc';

/** Images kept in the window (base64 PNGs add up); the oldest go first. */
export const GALLERY_LIMIT = 48;

export interface GalleryItem {
  /** `jobId:index`, unique. */
  key: string;
  jobId: string;
  /** Base64 of the PNG, as the engine gave it. */
  image: string;
  seed: number;
  width: number;
  height: number;
  /** The whole job's time, from its start (queue time excluded). */
  timeMs: number;
  /** What was asked for. */
  request: ImageRequest;
  /** Where Save put it, once saved. */
  savedPath: string | null;
}

/** The image as an address the CSP's `img-src data:` allows. */
export function dataUrl(item: Pick<GalleryItem, 'image'>): string {
  return `data:image/png;base64,${item.image}`;
}

/** A failed start or submit (no details), or a job's own error (with sd's exit and stderr). */
export type DiffusionError = ErrorReport & { details?: JobError['details'] };

export class DiffusionStore {
  server = $state<ImageServerInfo | null>(null);
  /** The first query has answered. */
  loaded = $state(false);
  /** A start or stop asked from this window is on its way. */
  pending = $state<'starting' | 'stopping' | null>(null);
  /** Why the server could not start (or stop). */
  serverError = $state<ErrorReport | null>(null);
  /** The window's latest job, as its last event (or query) told. */
  job = $state<JobSummary | null>(null);
  /** generate_image is on its way. */
  submitting = $state(false);
  /** Why the latest generation failed. */
  jobError = $state<DiffusionError | null>(null);
  /** Newest first. */
  gallery = $state<GalleryItem[]>([]);

  /** The window's latest job and what it asked for (the gallery's metadata). One at
   * a time: Generate waits until the previous job has finished. */
  #current: { id: string; request: ImageRequest } | null = null;
  /** Jobs whose images were fetched already (the event and the query may both see "complete"). */
  readonly #collected = new Set<string>();
  /** Jobs whose images are being fetched now. */
  readonly #collecting = new Set<string>();

  /** A job of this window waits or runs. */
  get busy(): boolean {
    if (this.submitting) return true;
    const status = this.job?.status;
    return status === 'pending' || status === 'running';
  }

  async load(): Promise<void> {
    try {
      this.server = await ipc.imageServer();
    } catch (error) {
      console.warn('Switchyard: cannot read the image server', error);
    } finally {
      this.loaded = true;
    }
  }

  /** `image_server_changed`: started somewhere (here, the tray) or stopped. */
  applyServer(server: ImageServerInfo | null): void {
    this.server = server;
    if (server) this.serverError = null;
  }

  /** Starts the server with an installed diffusion model. Never throws. */
  async start(modelId: string): Promise<void> {
    if (this.pending) return;
    this.pending = 'starting';
    this.serverError = null;
    try {
      this.server = await ipc.startImageServer(modelId);
    } catch (error) {
      this.serverError = toErrorReport(error);
    } finally {
      this.pending = null;
    }
  }

  async stop(): Promise<void> {
    if (this.pending) return;
    this.pending = 'stopping';
    this.serverError = null;
    try {
      await ipc.stopImageServer();
      this.server = null;
    } catch (error) {
      this.serverError = toErrorReport(error);
    } finally {
      this.pending = null;
    }
  }

  /** Queues a generation. Never throws: a refusal lands in `jobError`. */
  async generate(request: ImageRequest): Promise<void> {
    if (this.busy) return;
    this.submitting = true;
    this.jobError = null;
    try {
      const id = await ipc.generateImage(request);
      this.#current = { id, request };
      // Its first events may have come before the id did: ask once where it is.
      await this.#refresh(id);
    } catch (error) {
      this.jobError = toErrorReport(error);
    } finally {
      this.submitting = false;
    }
  }

  /** Cancels the window's job; its `cancelled` status comes as an event. */
  async cancel(): Promise<void> {
    const job = this.job;
    if (!job || (job.status !== 'pending' && job.status !== 'running')) return;
    try {
      this.#applySummary(await ipc.cancelImageJob(job.id));
    } catch (error) {
      this.jobError = toErrorReport(error);
    }
  }

  /** `image_job_changed`: only jobs this window made (other programs use the HTTP API). */
  applyJob(summary: JobSummary): void {
    if (summary.id !== this.#current?.id) return;
    this.#applySummary(summary);
    if (summary.status === 'complete') void this.#collect(summary.id);
  }

  /** Saves an image into the gallery folder; resolves to its path. Rejects with an ErrorReport. */
  async save(item: GalleryItem): Promise<string> {
    const path = await ipc.saveImage(item.image, item.seed);
    const index = this.gallery.findIndex((entry) => entry.key === item.key);
    if (index >= 0) this.gallery[index] = { ...this.gallery[index], savedPath: path };
    return path;
  }

  removeFromGallery(key: string): void {
    this.gallery = this.gallery.filter((item) => item.key !== key);
  }

  #applySummary(summary: JobSummary): void {
    if (summary.id !== this.#current?.id) return;
    this.job = summary;
    if (summary.status === 'error' && summary.error) this.jobError = { ...summary.error };
  }

  async #refresh(id: string): Promise<void> {
    try {
      const view = await ipc.imageJob(id);
      this.#applySummary(summaryOf(view));
      if (view.status === 'complete') this.#addResult(view);
    } catch (error) {
      console.warn('Switchyard: cannot read image job', id, error);
    }
  }

  async #collect(id: string): Promise<void> {
    if (this.#collected.has(id) || this.#collecting.has(id)) return;
    this.#collecting.add(id);
    try {
      const view = await ipc.imageJob(id);
      this.#addResult(view);
    } catch (error) {
      this.jobError = toErrorReport(error);
    } finally {
      this.#collecting.delete(id);
    }
  }

  #addResult(view: JobView): void {
    const request = this.#current?.id === view.id ? this.#current.request : undefined;
    if (!view.result || !request || this.#collected.has(view.id)) return;
    this.#collected.add(view.id);
    const timeMs = view.result.time_ms;
    const items: GalleryItem[] = view.result.images.map((image, index) => ({
      key: `${view.id}:${index}`,
      jobId: view.id,
      image: image.image,
      seed: image.seed,
      width: image.width,
      height: image.height,
      timeMs,
      request,
      savedPath: null,
    }));
    this.gallery = [...items, ...this.gallery].slice(0, GALLERY_LIMIT);
  }
}

function summaryOf(view: JobView): JobSummary {
  return {
    id: view.id,
    status: view.status,
    progress: view.progress,
    eta_seconds: view.eta_seconds,
    error: view.error,
  };
}
