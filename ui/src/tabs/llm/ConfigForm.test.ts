// The configuration form's draft model and role: what it sends to the engine, and
// that a draft named by its file (an instance file's `[draft]`) survives a save.
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InstanceSpec } from '../../bindings/InstanceSpec';
import { fakeInstalledModels, fakeInstance } from '../../lib/fixtures';
import { LlamaStore } from '../../lib/stores/llama.svelte';
import ConfigForm from './ConfigForm.svelte';

let saved: InstanceSpec[];

beforeEach(() => {
  saved = [];
  mockIPC((command, args) => {
    if (command === 'update_instance') {
      const spec = (args as { spec: InstanceSpec }).spec;
      saved.push(spec);
      return { ...fakeInstance(), spec };
    }
    if (command === 'list_instances') return saved.length > 0 ? [{ ...fakeInstance(), spec: saved.at(-1) }] : [];
    if (command === 'preview_instance') throw { code: 'NOT_FOUND', message: 'no preview here', suggestion: '' };
    return null;
  });
});

afterEach(() => {
  cleanup();
  clearMocks();
});

const models = fakeInstalledModels().filter((model) => model.kind === 'llm');

describe('ConfigForm', () => {
  it('sends the chosen draft and its drafted tokens, and the role', async () => {
    render(ConfigForm, { store: new LlamaStore(), instance: fakeInstance(), models });
    const draftModel = models[0]!.id;
    await fireEvent.change(screen.getByTestId('llm-draft-model'), { target: { value: draftModel } });
    await fireEvent.input(screen.getByTestId('llm-draft-max'), { target: { value: '8' } });
    await fireEvent.change(screen.getByTestId('llm-role'), { target: { value: 'chat' } });
    await fireEvent.click(screen.getByTestId('llm-save'));
    await waitFor(() => expect(saved).toHaveLength(1));
    expect(saved[0]!.draft).toEqual({ model_path: '', model_id: draftModel, max_tokens: 8, min_tokens: null });
    expect(saved[0]!.role).toBe('chat');
  });

  it('keeps a draft named by its file when other fields change', async () => {
    const instance = fakeInstance();
    instance.spec.draft = { model_path: '/models/small.gguf', model_id: null, max_tokens: 4, min_tokens: null };
    render(ConfigForm, { store: new LlamaStore(), instance, models });
    const select = screen.getByTestId('llm-draft-model') as HTMLSelectElement;
    expect(select.selectedOptions[0]?.textContent).toBe('/models/small.gguf');
    await fireEvent.change(screen.getByTestId('llm-role'), { target: { value: 'chat' } });
    await fireEvent.click(screen.getByTestId('llm-save'));
    await waitFor(() => expect(saved).toHaveLength(1));
    expect(saved[0]!.draft).toEqual(instance.spec.draft);
  });
});
