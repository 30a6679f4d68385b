import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it } from 'vitest';
import type { InstanceStatus } from '../../bindings/InstanceStatus';
import type { LogLine } from '../../bindings/LogLine';
import { fakeInstance } from '../fixtures';
import { applyEvent, createStores } from './engine';
import { LOG_LIMIT, LlamaStore } from './llama.svelte';

afterEach(() => clearMocks());

const line = (seq: number, message = `line ${seq}`): LogLine => ({
  seq,
  time: null,
  level: 'info',
  tag: 'srv',
  source: null,
  message,
});

describe('LlamaStore', () => {
  it('takes the engine list from llama_instances and selects the first', () => {
    const s = createStores();
    applyEvent(s, { type: 'llama_instances', instances: [fakeInstance('a'), fakeInstance('b')] });
    expect(s.llama.instances.map((i) => i.spec.name)).toEqual(['a', 'b']);
    expect(s.llama.selected).toBe('a');
  });

  it('moves an instance on llama_state and asks for its full status', async () => {
    let listed: InstanceStatus[] = [fakeInstance('a', 'stopped')];
    mockIPC((command) => (command === 'list_instances' ? listed : null));
    const s = createStores();
    s.llama.setInstances(listed);
    listed = [fakeInstance('a', 'healthy')];
    applyEvent(s, {
      type: 'llama_state',
      name: 'a',
      from: 'loading',
      to: 'healthy',
      reason: 'ready',
      pid: 4242,
      port: 41234,
      error: null,
      at_ms: 1,
    });
    expect(s.llama.instances[0].state).toBe('healthy');
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(s.llama.instances[0].endpoint).toBe('http://127.0.0.1:41234');
  });

  it('keeps a bounded log without repeating lines it has', () => {
    const store = new LlamaStore();
    store.applyLog('a', [line(0), line(1)]);
    store.applyLog('a', [line(1), line(2)]);
    expect(store.logs.a.map((l) => l.seq)).toEqual([0, 1, 2]);
    store.applyLog('a', Array.from({ length: LOG_LIMIT + 10 }, (_, i) => line(i + 3)));
    expect(store.logs.a).toHaveLength(LOG_LIMIT);
    expect(store.logs.a[store.logs.a.length - 1].seq).toBe(LOG_LIMIT + 12);
  });

  it('streams a chat answer from deltas, then takes the outcome with its timings', async () => {
    let answer: (value: unknown) => void = () => {};
    const sent: unknown[] = [];
    mockIPC((command, args) => {
      if (command === 'chat') {
        sent.push(args);
        return new Promise((resolve) => (answer = resolve));
      }
      return [];
    });
    const s = createStores();
    const sending = s.llama.send('a', 'Hello?');
    const chat = s.llama.chat('a');
    expect(chat.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    applyEvent(s, { type: 'llama_chat_delta', instance: 'a', chat_id: 'chat-1', content: 'Hi', reasoning: '' });
    applyEvent(s, { type: 'llama_chat_delta', instance: 'a', chat_id: 'chat-1', content: ' there', reasoning: 'hmm' });
    expect(chat.messages[1].content).toBe('Hi there');
    expect(chat.messages[1].reasoning).toBe('hmm');
    expect(chat.messages[1].streaming).toBe(true);
    const timings = { prompt_n: 3, prompt_ms: 1, prompt_per_second: 3000, predicted_n: 2, predicted_ms: 10, predicted_per_second: 200, draft_n: 0, draft_n_accepted: 0 };
    answer({ chat_id: 'chat-1', content: 'Hi there!', reasoning: 'hmm', finish_reason: 'stop', timings });
    await sending;
    expect(chat.messages[1]).toMatchObject({ content: 'Hi there!', streaming: false, timings });
    expect(sent[0]).toMatchObject({ name: 'a', request: { messages: [{ role: 'user', content: 'Hello?' }] } });
  });

  it('puts a typed error on the instance when a start fails', async () => {
    mockIPC((command) => {
      if (command === 'start_instance') {
        throw { code: 'PORT_IN_USE', message: 'port 8080 on 127.0.0.1 is in use', suggestion: 'Choose another port.' };
      }
      return [fakeInstance('a')];
    });
    const store = new LlamaStore();
    expect(await store.start('a')).toBe(false);
    expect(store.errors.a?.code).toBe('PORT_IN_USE');
    expect(store.busy.a).toBeNull();
  });
});
