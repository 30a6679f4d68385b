// The LLM tab's first card: the Switchyard endpoint's address from the engine, a
// client snippet to copy, or a line saying it is not served.
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RoutedModel } from '../../bindings/RoutedModel';
import { FAKE_ENDPOINT_URL, fakeRoutedModel } from '../../lib/fixtures';
import { RouterStore } from '../../lib/stores/router.svelte';
import EndpointCard from './EndpointCard.svelte';

let url: string | null;
let listed: RoutedModel[];

beforeEach(() => {
  url = FAKE_ENDPOINT_URL;
  listed = [
    fakeRoutedModel({ id: 'meta-llama-3-1-8b-instruct-q4-k-m' }),
    fakeRoutedModel({ id: 'qwen2-5-7b-instruct-q4-k-m', state: 'loaded' }),
  ];
  mockIPC((command) => {
    if (command === 'endpoint_url') return url;
    if (command === 'routed_models') return listed;
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
  render(EndpointCard, { router });
  return router;
}

describe('EndpointCard', () => {
  it('shows the address and a curl snippet naming a loaded model, then the Python one', async () => {
    await renderCard();
    expect(screen.getByTestId('endpoint-url').textContent).toBe(FAKE_ENDPOINT_URL);
    const snippet = screen.getByTestId('endpoint-snippet');
    expect(snippet.dataset.language).toBe('curl');
    expect(snippet.textContent).toContain(`curl ${FAKE_ENDPOINT_URL}/chat/completions`);
    expect(snippet.textContent).toContain('"model":"qwen2-5-7b-instruct-q4-k-m"');

    await fireEvent.click(screen.getByTestId('endpoint-snippet-python'));
    await waitFor(() => expect(screen.getByTestId('endpoint-snippet').dataset.language).toBe('python'));
    expect(screen.getByTestId('endpoint-snippet').textContent).toContain(`base_url="${FAKE_ENDPOINT_URL}"`);
    expect(screen.getByLabelText('Copy Python snippet')).toBeTruthy();
    expect(screen.getByLabelText('Copy endpoint address')).toBeTruthy();
  });

  it('says when the endpoint is not served here', async () => {
    url = null;
    await renderCard();
    expect(screen.getByTestId('endpoint-not-served').textContent).toContain('not served');
    expect(screen.queryByTestId('endpoint-snippet')).toBeNull();
  });

  it('follows the engine: an event makes it read the address again', async () => {
    url = null;
    const router = await renderCard();
    url = FAKE_ENDPOINT_URL;
    router.apply({ type: 'orchestrator', kind: 'model_unloaded', instance: 'x', reason: 'idle', ram_bytes: 0, vram_bytes: 0 });
    await waitFor(() => expect(screen.getByTestId('endpoint-url').textContent).toBe(FAKE_ENDPOINT_URL));
  });
});
