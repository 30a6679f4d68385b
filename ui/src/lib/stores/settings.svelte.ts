// The user's settings: loaded once, replaced by `settings_changed` and by saves.
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { Settings } from '../../bindings/Settings';
import { ipc, toErrorReport } from '../ipc';

export type SaveResult = { ok: true; restartRequired: boolean } | { ok: false; error: ErrorReport };

export class SettingsStore {
  value = $state<Settings | null>(null);
  error = $state<ErrorReport | null>(null);
  saving = $state(false);

  async load(): Promise<void> {
    try {
      this.value = await ipc.getSettings();
      this.error = null;
    } catch (error) {
      this.error = toErrorReport(error);
    }
  }

  set(settings: Settings): void {
    this.value = settings;
  }

  /** Saves through the engine, which validates; the stored result replaces ours. */
  async save(settings: Settings): Promise<SaveResult> {
    this.saving = true;
    try {
      const update = await ipc.saveSettings(settings);
      this.value = update.settings;
      return { ok: true, restartRequired: update.restart_required };
    } catch (error) {
      return { ok: false, error: toErrorReport(error) };
    } finally {
      this.saving = false;
    }
  }
}
