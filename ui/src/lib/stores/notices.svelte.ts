// Problems to show above the tabs until dismissed: start-up warnings from the
// engine, and errors of actions that have no form of their own (the theme toggle).
import type { ErrorReport } from '../../bindings/ErrorReport';
import { ipc } from '../ipc';

export interface Notice {
  report: ErrorReport;
  /** Start-up warnings are things to know; errors are things that failed just now. */
  tone: 'warning' | 'error';
}

export class NoticesStore {
  items = $state<Notice[]>([]);

  push(report: ErrorReport, tone: Notice['tone'] = 'error'): void {
    this.items = [...this.items, { report, tone }];
  }

  dismiss(index: number): void {
    this.items = this.items.filter((_, i) => i !== index);
  }

  async loadStartupWarnings(): Promise<void> {
    try {
      const warnings = await ipc.startupWarnings();
      const notices = warnings.map((report): Notice => ({ report, tone: 'warning' }));
      if (notices.length > 0) this.items = [...notices, ...this.items];
    } catch (error) {
      // Not worth a banner of its own: the window works without them.
      console.warn('Switchyard: cannot read start-up warnings', error);
    }
  }
}
