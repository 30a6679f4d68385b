import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fakeProposal, fakeSettings } from '../lib/fixtures';
import { createStores } from '../lib/stores/engine';
import FirstRunWizard from './FirstRunWizard.svelte';

afterEach(() => {
  cleanup();
  clearMocks();
});

function setup(answers: Record<string, (args: unknown) => unknown>) {
  const calls: { command: string; args: unknown }[] = [];
  mockIPC((command, args) => {
    calls.push({ command, args });
    const answer = answers[command];
    if (!answer) throw `unexpected ${command}`;
    return answer(args);
  });
  const onClose = vi.fn();
  const stores = createStores();
  render(FirstRunWizard, { stores, onClose });
  return { calls, onClose };
}

describe('FirstRunWizard', () => {
  it('lists the proposal with the engine\'s recommendation selected and what does not fit marked', async () => {
    setup({ first_run_proposal: () => fakeProposal });
    const recommended = await screen.findByTestId('first-run-recommended');
    const row = recommended.closest('[data-testid="first-run-choice"]') as HTMLElement;
    expect(row.dataset.id).toBe(fakeProposal.recommended);
    expect((row.querySelector('input') as HTMLInputElement).checked).toBe(true);
    const tooLarge = screen
      .getAllByTestId('first-run-choice')
      .filter((choice) => choice.dataset.fits === 'false')
      .map((choice) => choice.dataset.id);
    expect(tooLarge).toEqual(['qwen2.5-7b-instruct']);
    expect(row.textContent).toContain('Qwen Research License');
    expect(row.querySelector('[data-testid="first-run-speed"]')?.textContent).toBe('about 14 tokens/s');
    expect(screen.getByTestId('first-run-proposal').textContent).toContain('10 tokens/s or more');
    expect(screen.queryByTestId('first-run-speed-warning')).toBeNull();
  });

  it('marks fitting models too slow to chat with, and says when even the proposal is slow', async () => {
    const slow = {
      ...fakeProposal,
      recommended: 'qwen2.5-0.5b-instruct',
      choices: fakeProposal.choices.map((choice) => ({ ...choice, tokens_per_second: 3, usable: false })),
      speed_warning: 'Every model that fits is slow on this machine: Qwen2.5 0.5B Instruct is the fastest, at about 3 tokens/s (usable is 10 tokens/s or more).',
    };
    setup({ first_run_proposal: () => slow });
    expect((await screen.findByTestId('first-run-speed-warning')).textContent).toContain('about 3 tokens/s');
    // The two that fit are slow; the one that does not fit says so instead.
    expect(screen.getAllByTestId('first-run-slow')).toHaveLength(2);
  });

  it('skipping marks the first run done and closes', async () => {
    const { calls, onClose } = setup({
      first_run_proposal: () => fakeProposal,
      finish_first_run: () => ({ settings: { ...fakeSettings(), first_run_done: true }, restart_required: false }),
    });
    await fireEvent.click(await screen.findByTestId('first-run-skip'));
    await waitFor(() => expect(onClose).toHaveBeenCalled());
    expect(calls.map((call) => call.command)).toContain('finish_first_run');
  });

  it('downloads the chosen model and shows why a download could not start', async () => {
    const { calls } = setup({
      first_run_proposal: () => fakeProposal,
      install_curated_model: () => {
        throw { code: 'NETWORK_ERROR', message: 'Downloading from https://huggingface.co failed', suggestion: 'Check the connection.' };
      },
    });
    const smallest = await screen.findByDisplayValue('qwen2.5-0.5b-instruct');
    await fireEvent.click(smallest);
    await fireEvent.click(screen.getByTestId('first-run-start'));
    const error = await screen.findByTestId('first-run-error');
    expect(error.textContent).toContain('Check the connection.');
    expect(calls.find((call) => call.command === 'install_curated_model')?.args).toEqual({ id: 'qwen2.5-0.5b-instruct' });
    expect(screen.getByTestId('first-run-retry')).toBeTruthy();
  });
});
