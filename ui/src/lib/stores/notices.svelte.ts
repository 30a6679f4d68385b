// Problems to show above the tabs until dismissed: start-up warnings from the
// engine, and errors of actions that have no form of their own (the theme toggle).
import type { ErrorReport } from '../../bindings/ErrorReport';
import { ipc } from '../ipc';

export class NoticesStore {
  items = $state<ErrorReport[]>([]);

  push(report: ErrorReport): void {
    this.items = [...this.items, report];
  }

  dismiss(index: number): void {
    this.items = this.items.filter((_, i) => i !== index);
  }

  async loadStartupWarnings(): Promise<void> {
    try {
      const warnings = await ipc.startupWarnings();
      if (warnings.length > 0) this.items = [...warnings, ...this.items];
    } catch (error) {
      // Not worth a banner of its own: the window works without them.
      console.warn('Switchyard: cannot read start-up warnings', error);
    }
  }
}
