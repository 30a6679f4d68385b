// The Models tab's endpoint card: each language model's state as the engine
// reports it, Load/Unload through the engine, the pin, and refusals shown per model.
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { RoutedModel } from '../../bindings/RoutedModel';
import { FAKE_ENDPOINT_URL, fakeRoutedModel } from '../../lib/fixtures';
import { RouterStore } from '../../lib/stores/router.svelte';
import RouterCard from './RouterCard.svelte';

const LLAMA = 'meta-llama-3-1-8b-instruct-q4-k-m';
const QWEN = 'qwen2-5-7b-instruct-q4-k-m';

let listed: RoutedModel[];
let calls: Array<[string, Record<string, unknown>]>;
let failures: Record<string, ErrorReport>;
/** Resolves the pending load_model, when a test holds it. */
let releaseLoad: (() => void) | null;

beforeEach(() => {
  listed = [
    fakeRoutedModel({ id: LLAMA, name: 'Meta-Llama-3.1-8B-Instruct-Q4_K_M' }),
    fakeRoutedModel({ id: QWEN, name: 'Qwen2.5-7B-Instruct-Q4_K_M', state: 'loaded', pinned: true }),
  ];
  calls = [];
  failures = {};
  releaseLoad = null;
  mockIPC(async (command, args) => {
    calls.push([command, (args ?? {}) as Record<string, unknown>]);
    if (failures[command]) throw failures[command];
    const { model, pinned } = (args ?? {}) as { model: string; pinned: boolean };
    const change = (patch: Partial<RoutedModel>) => {
      listed = listed.map((known) => (known.id === model ? fakeRoutedModel({ ...known, ...patch }) : known));
      return listed.find((known) => known.id === model);
    };
    switch (command) {
      case 'routed_models':
        return listed;
      case 'endpoint_url':
        return FAKE_ENDPOINT_URL;
      case 'load_model':
        await new Promise<void>((resolve) => (releaseLoad = resolve));
        return change({ state: 'loaded', ram_bytes: 5 * 2 ** 30, vram_bytes: 0 });
      case 'unload_model':
        return change({ state: 'unloaded', ram_bytes: null, vram_bytes: null, unload_at_ms: null });
      case 'pin_model':
        return change({ pinned });
    }
    throw `unexpected ${command}`;
  });
});

afterEach(() => {
  cleanup();
  clearMocks();
});

async function renderCard() {
  const router = new RouterStore();
  await router.load();
  render(RouterCard, { router });
  return router;
}

const row = (id: string) => screen.getAllByTestId('router-row').find((node) => node.dataset.id === id)!;
const argsOf = (command: string) => calls.filter(([name]) => name === command).map(([, args]) => args);

describe('RouterCard', () => {
  it('lists each language model with the state, memory and pin the engine reports', async () => {
    await renderCard();
    expect(screen.getAllByTestId('router-row').map((node) => node.dataset.id)).toEqual([LLAMA, QWEN]);
    const llama = within(row(LLAMA));
    expect(llama.getByTestId('router-state').dataset.state).toBe('unloaded');
    expect(llama.getByText('Unloaded')).toBeTruthy();
    expect(llama.getByText(LLAMA)).toBeTruthy();
    expect((llama.getByTestId('router-pin') as HTMLInputElement).checked).toBe(false);
    expect(llama.getByTestId('router-load').textContent?.trim()).toBe('Load');

    const qwen = within(row(QWEN));
    expect(qwen.getByTestId('router-state').dataset.state).toBe('loaded');
    expect(qwen.getByText('5.0 GiB RAM')).toBeTruthy();
    expect((qwen.getByTestId('router-pin') as HTMLInputElement).checked).toBe(true);
    expect(qwen.getByTestId('router-unload').textContent?.trim()).toBe('Unload');
  });

  it('loads a model through the engine: the button waits, then shows the engine’s new state', async () => {
    await renderCard();
    await fireEvent.click(within(row(LLAMA)).getByTestId('router-load'));
    expect(argsOf('load_model')).toEqual([{ model: LLAMA }]);
    const button = within(row(LLAMA)).getByTestId('router-load') as HTMLButtonElement;
    await waitFor(() => expect(button.textContent?.trim()).toBe('Loading…'));
    expect(button.disabled).toBe(true);

    releaseLoad?.();
    await waitFor(() => expect(row(LLAMA).dataset.state).toBe('loaded'));
    const unload = within(row(LLAMA)).getByTestId('router-unload');
    expect(within(row(LLAMA)).getByText('5.0 GiB RAM')).toBeTruthy();

    await fireEvent.click(unload);
    expect(argsOf('unload_model')).toEqual([{ model: LLAMA }]);
    await waitFor(() => expect(row(LLAMA).dataset.state).toBe('unloaded'));
  });

  it('pins and unpins a model', async () => {
    await renderCard();
    await fireEvent.click(within(row(LLAMA)).getByTestId('router-pin'));
    expect(argsOf('pin_model')).toEqual([{ model: LLAMA, pinned: true }]);
    await waitFor(() => expect((within(row(LLAMA)).getByTestId('router-pin') as HTMLInputElement).checked).toBe(true));
    expect(row(LLAMA).dataset.pinned).toBe('true');
    await fireEvent.click(within(row(QWEN)).getByTestId('router-pin'));
    expect(argsOf('pin_model')[1]).toEqual({ model: QWEN, pinned: false });
  });

  it('shows a refused load under its model, and the pin as the engine kept it', async () => {
    failures.load_model = {
      code: 'INSUFFICIENT_RESOURCES',
      message: 'Qwen needs 9.1 GiB; 4.2 GiB can be made free.',
      suggestion: 'Unpin a model or pick a smaller quantization.',
    };
    failures.pin_model = { code: 'NOT_FOUND', message: 'model gone', suggestion: '' };
    await renderCard();
    await fireEvent.click(within(row(LLAMA)).getByTestId('router-load'));
    const failure = await screen.findByTestId('router-failure');
    expect(failure.dataset.errorCode).toBe('INSUFFICIENT_RESOURCES');
    expect(failure.textContent).toContain('4.2 GiB can be made free');
    expect(row(LLAMA).dataset.state).toBe('unloaded');

    const pin = within(row(LLAMA)).getByTestId('router-pin') as HTMLInputElement;
    await fireEvent.click(pin);
    await waitFor(() => expect(argsOf('pin_model')).toHaveLength(1));
    await waitFor(() => expect(pin.checked).toBe(false));
  });

  it('says when there is no language model yet', async () => {
    listed = [];
    await renderCard();
    expect(screen.getByTestId('router-empty').textContent).toContain('No language models yet');
  });
});
