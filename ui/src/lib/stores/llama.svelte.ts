// llama-server instances as the engine reports them: the list (replaced by
// `llama_instances`, patched by `llama_state`), a bounded log per instance
// (`llama_log`), the test chat per instance (`llama_chat_delta`, `llama_chat_done`),
// and the calls in flight with their typed errors.
import type { ChatOutcome } from '../../bindings/ChatOutcome';
import type { ChatDelta } from '../../bindings/ChatDelta';
import type { ChatTimings } from '../../bindings/ChatTimings';
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { InstanceSpec } from '../../bindings/InstanceSpec';
import type { InstanceStatus } from '../../bindings/InstanceStatus';
import type { LogLine } from '../../bindings/LogLine';
import type { StateChange } from '../../bindings/StateChange';
import { ipc, toErrorReport } from '../ipc';

/** Log lines kept per instance in the window (the engine keeps 2000 and the files). */
export const LOG_LIMIT = 1000;

/** `known` with the lines of `lines` it does not have yet; at most LOG_LIMIT kept. */
export function appendLog(known: LogLine[], lines: LogLine[]): LogLine[] {
  const lastSeq = known.length > 0 ? known[known.length - 1].seq : -1;
  const fresh = lines.filter((line) => line.seq > lastSeq);
  if (fresh.length === 0) return known;
  const next = known.concat(fresh);
  return next.length > LOG_LIMIT ? next.slice(next.length - LOG_LIMIT) : next;
}

/** Where a log viewer reads an instance's lines: the app's own, or the daemon's. */
export interface LogSource {
  logs: Record<string, LogLine[]>;
  loadLogs(name: string): Promise<void>;
}

export type Busy = 'start' | 'stop' | 'restart' | 'save' | 'remove' | null;

export interface ChatEntry {
  id: number;
  role: 'user' | 'assistant';
  content: string;
  reasoning: string;
  /** Still arriving. */
  streaming: boolean;
  timings: ChatTimings | null;
  error: ErrorReport | null;
}

/** One instance's test chat. */
export class ChatSession {
  messages = $state<ChatEntry[]>([]);
  sending = $state(false);
  #id = 0;

  push(role: ChatEntry['role'], content: string, streaming = false): ChatEntry {
    const entry: ChatEntry = { id: this.#id++, role, content, reasoning: '', streaming, timings: null, error: null };
    this.messages.push(entry);
    // The proxied entry, so later changes to it are seen.
    return this.messages[this.messages.length - 1];
  }

  /** The answer being written, if any. */
  get pending(): ChatEntry | undefined {
    const last = this.messages[this.messages.length - 1];
    return last?.role === 'assistant' && last.streaming ? last : undefined;
  }

  applyDelta(delta: ChatDelta): void {
    const entry = this.pending;
    if (!entry) return;
    entry.content += delta.content;
    entry.reasoning += delta.reasoning;
  }

  finish(outcome: ChatOutcome): void {
    const entry = this.pending;
    if (!entry) return;
    // The whole answer beats the pieces (none is lost if an event was missed).
    entry.content = outcome.content;
    entry.reasoning = outcome.reasoning;
    entry.timings = outcome.timings;
    entry.streaming = false;
  }

  fail(error: ErrorReport): void {
    const entry = this.pending;
    if (!entry) return;
    entry.error = error;
    entry.streaming = false;
  }

  clear(): void {
    this.messages = [];
  }
}

export class LlamaStore implements LogSource {
  instances = $state<InstanceStatus[]>([]);
  loaded = $state(false);
  /** Why the list could not be read. */
  error = $state<ErrorReport | null>(null);
  /** The instance shown in the detail pane. */
  selected = $state<string | null>(null);
  /** Per instance: the call in flight. */
  busy = $state<Record<string, Busy>>({});
  /** Per instance: why the last action failed. */
  errors = $state<Record<string, ErrorReport | null>>({});
  logs = $state<Record<string, LogLine[]>>({});
  readonly chats: Record<string, ChatSession> = {};

  get current(): InstanceStatus | undefined {
    return this.instances.find((instance) => instance.spec.name === this.selected);
  }

  async load(): Promise<void> {
    try {
      this.setInstances(await ipc.listInstances());
      this.error = null;
    } catch (error) {
      this.error = toErrorReport(error);
    } finally {
      this.loaded = true;
    }
  }

  /** `llama_instances`: the engine's whole list. */
  setInstances(instances: InstanceStatus[]): void {
    this.instances = instances;
    this.loaded = true;
    if (this.selected === null || !instances.some((instance) => instance.spec.name === this.selected)) {
      this.selected = instances[0]?.spec.name ?? null;
    }
  }

  /** `llama_state`: one instance moved; its full status follows from the engine. */
  applyState(change: StateChange): void {
    const instance = this.instances.find((item) => item.spec.name === change.name);
    if (instance) {
      instance.state = change.to;
      instance.reason = change.reason;
      instance.pid = change.pid;
      if (change.error) instance.error = change.error;
    }
    // Endpoint, running configuration, measurements: ask for the whole status.
    void this.refresh();
  }

  async refresh(): Promise<void> {
    try {
      this.setInstances(await ipc.listInstances());
    } catch (error) {
      console.warn('Switchyard: cannot list llama-server instances', error);
    }
  }

  /** `llama_log`: new lines, oldest first; at most LOG_LIMIT kept. */
  applyLog(instance: string, lines: LogLine[]): void {
    const known = this.logs[instance] ?? [];
    const next = appendLog(known, lines);
    if (next !== known) this.logs[instance] = next;
  }

  /** The lines the engine kept from before the window listened. */
  async loadLogs(name: string): Promise<void> {
    try {
      this.applyLog(name, await ipc.instanceLogs(name, 0, LOG_LIMIT));
    } catch (error) {
      console.warn(`Switchyard: cannot read the log of ${name}`, error);
    }
  }

  chat(name: string): ChatSession {
    this.chats[name] ??= new ChatSession();
    return this.chats[name];
  }

  applyChatDelta(delta: ChatDelta): void {
    this.chats[delta.instance]?.applyDelta(delta);
  }

  applyChatDone(instance: string, outcome: ChatOutcome): void {
    this.chats[instance]?.finish(outcome);
  }

  /** Sends the chat's history plus `text`; the answer streams in through events. */
  async send(name: string, text: string): Promise<void> {
    const session = this.chat(name);
    if (session.sending || text.trim() === '') return;
    session.sending = true;
    const history = session.messages
      .filter((entry) => entry.error === null && !entry.streaming)
      .map((entry) => ({ role: entry.role, content: entry.content }));
    session.push('user', text);
    session.push('assistant', '', true);
    try {
      const outcome = await ipc.chat(name, {
        messages: [...history, { role: 'user', content: text }],
        max_tokens: 512,
        temperature: null,
        seed: null,
      });
      session.finish(outcome);
    } catch (error) {
      session.fail(toErrorReport(error));
    } finally {
      session.sending = false;
    }
  }

  /** Runs `action` for `name` with its busy flag; errors land in `errors[name]`. */
  async #act(name: string, busy: Busy, action: () => Promise<unknown>): Promise<boolean> {
    if (this.busy[name]) return false;
    this.busy[name] = busy;
    this.errors[name] = null;
    try {
      await action();
      return true;
    } catch (error) {
      this.errors[name] = toErrorReport(error);
      return false;
    } finally {
      this.busy[name] = null;
      await this.refresh();
    }
  }

  start(name: string): Promise<boolean> {
    return this.#act(name, 'start', () => ipc.startInstance(name));
  }

  stop(name: string): Promise<boolean> {
    return this.#act(name, 'stop', () => ipc.stopInstance(name));
  }

  restart(name: string): Promise<boolean> {
    return this.#act(name, 'restart', () => ipc.restartInstance(name));
  }

  /** Saves a changed configuration (a running server keeps the old one until restarted). */
  save(spec: InstanceSpec): Promise<boolean> {
    return this.#act(spec.name, 'save', () => ipc.updateInstance(spec));
  }

  async remove(name: string): Promise<boolean> {
    const removed = await this.#act(name, 'remove', () => ipc.removeInstance(name));
    if (removed) {
      delete this.logs[name];
      delete this.chats[name];
    }
    return removed;
  }

  /** Creates an instance of a model (the engine's defaults) and selects it; rejects
   *  with the engine's ErrorReport. */
  async create(name: string, modelId: string): Promise<void> {
    const created = await ipc.createInstance(name, modelId);
    await this.refresh();
    this.selected = created.spec.name;
  }
}
