// Both services at a glance, as the engine reports them.
import type { EngineStatus } from '../../bindings/EngineStatus';
import type { ErrorReport } from '../../bindings/ErrorReport';
import { ipc, toErrorReport } from '../ipc';

export class StatusStore {
  value = $state<EngineStatus | null>(null);
  error = $state<ErrorReport | null>(null);
  /** The engine announced it is stopping; nothing new will start. */
  shuttingDown = $state(false);

  async load(): Promise<void> {
    try {
      this.value = await ipc.engineStatus();
      this.error = null;
    } catch (error) {
      this.error = toErrorReport(error);
    }
  }

  set(status: EngineStatus): void {
    this.value = status;
  }
}
