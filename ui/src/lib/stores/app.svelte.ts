// Version and folders of the running app, for the About section.
import type { AppInfo } from '../../bindings/AppInfo';
import type { ErrorReport } from '../../bindings/ErrorReport';
import { ipc, toErrorReport } from '../ipc';

export class AppInfoStore {
  value = $state<AppInfo | null>(null);
  error = $state<ErrorReport | null>(null);

  async load(): Promise<void> {
    try {
      this.value = await ipc.appInfo();
      this.error = null;
    } catch (error) {
      this.error = toErrorReport(error);
    }
  }
}
