// Problems to show above the tabs until dismissed: start-up warnings from the
// engine, and errors of actions that have no form of their own (the theme toggle).
import type { ErrorReport } from '../../bindings/ErrorReport';
import { ipc } from '../ipc';

export interface Notice {
  report: ErrorReport;
  /** `startup`: a warning from start-up, to know about. `action`: something just failed. */
  source: 'startup' | 'action';
}

export class NoticesStore {
  items = $state<Notice[]>([]);

  /** An action without a form of its own failed (the theme toggle). */
  push(report: ErrorReport): void {
    this.items = [...this.items, { report, source: 'action' }];
  }

  dismiss(index: number): void {
    this.items = this.items.filter((_, i) => i !== index);
  }

  async loadStartupWarnings(): Promise<void> {
    try {
      const warnings = await ipc.startupWarnings();
      const notices = warnings.map((report): Notice => ({ report, source: 'startup' }));
      if (notices.length > 0) this.items = [...notices, ...this.items];
    } catch (error) {
      // Not worth a banner of its own: the window works without them.
      console.warn('Switchyard: cannot read start-up warnings', error);
    }
  }
}
