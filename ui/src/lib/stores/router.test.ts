import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RoutedModel } from '../../bindings/RoutedModel';
import { FAKE_ENDPOINT_URL, fakeRoutedModel, fakeSample } from '../fixtures';
import { RouterStore } from './router.svelte';

afterEach(() => clearMocks());

describe('RouterStore', () => {
  it('reads the models again on orchestrator and LLM state events, not on samples', async () => {
    let asked = 0;
    let listed: RoutedModel[] = [fakeRoutedModel()];
    mockIPC((command) => {
      if (command === 'routed_models') {
        asked += 1;
        return listed;
      }
      if (command === 'endpoint_url') return FAKE_ENDPOINT_URL;
      throw `unexpected ${command}`;
    });
    const router = new RouterStore();
    await router.load();
    expect(router.url).toBe(FAKE_ENDPOINT_URL);
    expect(router.models.map((model) => model.state)).toEqual(['unloaded']);

    router.apply({ type: 'system_sample', ...fakeSample(1000, 1) });
    expect(asked).toBe(1);

    listed = [fakeRoutedModel({ state: 'loading' })];
    router.apply({
      type: 'llama_state', name: 'x', from: 'stopped', to: 'loading', reason: '', pid: null, port: null, error: null, at_ms: 1,
    });
    await vi.waitFor(() => expect(router.models[0]?.state).toBe('loading'));

    listed = [fakeRoutedModel({ state: 'loaded' })];
    router.apply({ type: 'orchestrator', kind: 'model_loaded', instance: 'x', reason: 'requested', load_ms: 1, ram_bytes: 1, vram_bytes: 0 });
    await vi.waitFor(() => expect(router.models[0]?.state).toBe('loaded'));
  });

  it('keeps the engine’s error when the models cannot be read', async () => {
    mockIPC((command) => {
      if (command === 'routed_models') throw { code: 'SHUTTING_DOWN', message: 'closing', suggestion: '' };
      return null;
    });
    const router = new RouterStore();
    await router.load();
    expect(router.loaded).toBe(true);
    expect(router.error?.code).toBe('SHUTTING_DOWN');
    expect(router.url).toBeNull();
  });
});
