// The Resource Monitor's engine state: orchestrator status (with its prediction),
// the image server, and the event log. The engine computes; this only keeps.
import type { EngineEvent } from '../../bindings/EngineEvent';
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { ImageServerStatus } from '../../bindings/ImageServerStatus';
import type { OrchestratorStatus } from '../../bindings/OrchestratorStatus';
import { ipc, toErrorReport } from '../ipc';
import { appendBounded, LOG_CAPACITY, logEntryOf, type MonitorLogEntry } from '../monitor';

export class MonitorStore {
  orchestrator = $state<OrchestratorStatus | null>(null);
  imageServer = $state<ImageServerStatus | null>(null);
  log = $state<MonitorLogEntry[]>([]);
  error = $state<ErrorReport | null>(null);
  busy = $state(false);
  #seq = 0;
  #refreshing = false;
  #again = false;

  async load(): Promise<void> {
    try {
      const [orchestrator, imageServer] = await Promise.all([ipc.orchestratorStatus(), ipc.imageServerStatus()]);
      this.orchestrator = orchestrator;
      this.imageServer = imageServer;
    } catch (error) {
      this.error = toErrorReport(error);
    }
  }

  /**
   * Reloads the status. Refreshes asked for while one is in flight become one more
   * after it, so the last event's change is never missed.
   */
  async refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#again = true;
      return;
    }
    this.#refreshing = true;
    try {
      do {
        this.#again = false;
        await this.load();
      } while (this.#again);
    } finally {
      this.#refreshing = false;
    }
  }

  apply(event: EngineEvent, now = Date.now()): void {
    const entry = logEntryOf(event, this.#seq + 1, now);
    if (entry) {
      this.#seq += 1;
      this.log = appendBounded(this.log, entry, LOG_CAPACITY);
    }
    switch (event.type) {
      case 'orchestrator':
      case 'llama_state':
      case 'llama_slots':
      case 'image_server_changed':
      case 'image_job_changed':
      case 'system_sample':
        // The prediction follows memory; the phase follows the orchestrator; the
        // saved conversations' disk use follows their saves.
        void this.refresh();
        break;
    }
  }

  async restartLlm(): Promise<void> {
    this.busy = true;
    try {
      await ipc.restartSavedLlm();
      this.error = null;
    } catch (error) {
      this.error = toErrorReport(error);
    } finally {
      this.busy = false;
      await this.refresh();
    }
  }

  async clearSaved(): Promise<void> {
    try {
      await ipc.clearSavedState();
    } catch (error) {
      this.error = toErrorReport(error);
    }
    await this.refresh();
  }
}
