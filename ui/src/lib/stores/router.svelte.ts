// The Switchyard endpoint: its address and the models it answers for, as the
// engine reports them. Read again whenever an event may have moved a model
// (orchestrator events, LLM state changes, a changed library): the state, memory
// and unload time always come from the engine, never from here.
import type { EngineEvent } from '../../bindings/EngineEvent';
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { RoutedModel } from '../../bindings/RoutedModel';
import { ipc, toErrorReport } from '../ipc';

/** What the person asked for and the engine has not answered yet. */
export type RouterAction = 'load' | 'unload' | 'pin';

/** Engine events after which a model's state may differ. */
const MOVING_EVENTS: ReadonlySet<EngineEvent['type']> = new Set([
  'orchestrator',
  'llama_state',
  'llama_instances',
  'models_changed',
  'settings_changed',
  'daemon_changed',
]);

export class RouterStore {
  models = $state<RoutedModel[]>([]);
  /** `http://127.0.0.1:8434/v1` while the endpoint listens here; null otherwise. */
  url = $state<string | null>(null);
  /** Why the models could not be read. */
  error = $state<ErrorReport | null>(null);
  /** The first query has answered. */
  loaded = $state(false);
  /** Per model id: the action under way. */
  busy = $state<Record<string, RouterAction>>({});
  /** Per model id: why the last action failed (until dismissed or the next one). */
  failures = $state<Record<string, ErrorReport>>({});

  #loading = false;
  #again = false;

  /** Reads the models and the address; calls made meanwhile fold into one more. */
  async load(): Promise<void> {
    if (this.#loading) {
      this.#again = true;
      return;
    }
    this.#loading = true;
    try {
      do {
        this.#again = false;
        const [models, url] = await Promise.allSettled([ipc.routedModels(), ipc.endpointUrl()]);
        if (models.status === 'fulfilled') {
          this.models = models.value;
          this.error = null;
        } else {
          this.error = toErrorReport(models.reason);
        }
        if (url.status === 'fulfilled') this.url = url.value;
        else console.warn('Switchyard: cannot read the endpoint address', url.reason);
        this.loaded = true;
      } while (this.#again);
    } finally {
      this.#loading = false;
    }
  }

  /** An engine event: read again when it may have moved a model. */
  apply(event: EngineEvent): void {
    if (MOVING_EVENTS.has(event.type)) void this.load();
  }

  /** Loads a model as a request for it would; resolves once the engine answered. */
  loadModel(id: string): Promise<void> {
    return this.#act(id, 'load', () => ipc.loadModel(id));
  }

  unloadModel(id: string): Promise<void> {
    return this.#act(id, 'unload', () => ipc.unloadModel(id));
  }

  setPinned(id: string, pinned: boolean): Promise<void> {
    return this.#act(id, 'pin', () => ipc.pinModel(id, pinned));
  }

  dismiss(id: string): void {
    delete this.failures[id];
  }

  async #act(id: string, action: RouterAction, run: () => Promise<RoutedModel>): Promise<void> {
    this.busy[id] = action;
    delete this.failures[id];
    try {
      this.#replace(await run());
    } catch (error) {
      this.failures[id] = toErrorReport(error);
    } finally {
      delete this.busy[id];
      // Others may have been unloaded to make room.
      void this.load();
    }
  }

  #replace(model: RoutedModel): void {
    const index = this.models.findIndex((known) => known.id === model.id);
    if (index >= 0) this.models[index] = model;
    else this.models.push(model);
  }
}
