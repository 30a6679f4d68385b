import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { flushSync } from 'svelte';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeBinaryLog, fakeBinaryStatus } from '../fixtures';
import { BinarySetup } from '../stores/binaries.svelte';
import BinarySetupCard from './BinarySetupCard.svelte';

afterEach(() => {
  cleanup();
  clearMocks();
});

function loadedSetup(kind: 'llama_server' | 'diffusion' = 'llama_server') {
  const setup = new BinarySetup(kind);
  setup.loaded = true;
  return setup;
}

describe('BinarySetupCard', () => {
  it('shows the engine\u2019s status: build, version, path, tests and cache', () => {
    const setup = loadedSetup();
    setup.status = fakeBinaryStatus('llama_server', { variant: 'cpu', real_tested: false, from_cache: true });
    render(BinarySetupCard, { setup });

    const card = screen.getByTestId('binary-card');
    expect(card.dataset.kind).toBe('llama_server');
    expect(card.dataset.state).toBe('ready');
    expect(screen.getByTestId('binary-variant').textContent).toBe('CPU');
    expect(screen.getByTestId('binary-version').textContent).toBe('6.0.0 (build 11429, commit 3f0c7b1)');
    expect(screen.getByTestId('binary-path').textContent).toBe(setup.status.path);
    expect(screen.getByTestId('binary-real-test').dataset.real).toBe('false');
    expect(screen.getByTestId('binary-real-test').textContent).toContain('Basic test only');
    expect(screen.getByTestId('binary-cache').dataset.fromCache).toBe('true');
    expect(screen.getByTestId('binary-validated-at').textContent).not.toBe('');
    expect(screen.getByTestId('binary-validate').textContent?.trim()).toBe('Re-validate');
  });

  it('names a user-supplied binary as the user\u2019s own build', () => {
    const setup = loadedSetup();
    setup.status = fakeBinaryStatus('llama_server', { variant: null, path: '/opt/llama.cpp/llama-server' });
    render(BinarySetupCard, { setup });
    expect(screen.getByTestId('binary-variant').textContent).toBe('Your own build');
    expect(screen.getByText(/from the path you chose in Settings/)).toBeTruthy();
  });

  it('offers "Set up" before the first setup, then shows the result and the live log', async () => {
    let finish: (value: unknown) => void = () => {};
    const calls: unknown[] = [];
    mockIPC((command, args) => {
      if (command !== 'ensure_binary') throw `unexpected ${command}`;
      calls.push(args);
      return new Promise((resolve) => (finish = resolve));
    });
    const setup = loadedSetup();
    render(BinarySetupCard, { setup });
    expect(screen.getByTestId('binary-card').dataset.state).toBe('missing');
    expect(screen.getByTestId('binary-log-empty')).toBeTruthy();

    const button = screen.getByTestId('binary-validate') as HTMLButtonElement;
    expect(button.textContent?.trim()).toBe('Set up');
    await fireEvent.click(button);
    expect(calls).toEqual([{ kind: 'llama_server', force_validation: false }]);
    expect(button.disabled).toBe(true);
    expect(button.textContent).toContain('Testing…');
    expect(screen.getByTestId('binary-card').dataset.state).toBe('checking');

    setup.applyDownload({ variant: 'cpu', file: 'llama-b1-bin-cpu.tar.gz', bytes: 512 * 1024, total: 1024 * 1024 });
    flushSync();
    expect(screen.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('50');

    setup.appendLog(fakeBinaryLog({ level: 'info', step: 'basic_test', message: 'answers: version 1' }));
    setup.appendLog(fakeBinaryLog({ level: 'warn', step: 'real_test', message: 'no model installed yet' }));
    setup.appendLog(
      fakeBinaryLog({ level: 'error', step: 'real_test', variant: 'vulkan', message: 'died of SIGILL', code: 'BINARY_REJECTED' }),
    );
    flushSync();
    expect(screen.queryByTestId('binary-download')).toBeNull();
    const lines = screen.getAllByTestId('binary-log-line');
    expect(lines.map((line) => line.dataset.level)).toEqual(['info', 'warn', 'error']);
    expect(lines[2]?.textContent).toContain('died of SIGILL');
    expect(lines[2]?.textContent).toContain('BINARY_REJECTED');
    expect(lines[2]?.textContent).toContain('Vulkan');

    finish(fakeBinaryStatus('llama_server', { variant: 'cpu', from_cache: false }));
    await waitFor(() => expect(button.disabled).toBe(false));
    expect(button.textContent?.trim()).toBe('Re-validate');
    expect(screen.getByTestId('binary-cache').dataset.fromCache).toBe('false');
  });

  it('re-validates with force_validation and shows a typed error', async () => {
    const calls: unknown[] = [];
    mockIPC((command, args) => {
      calls.push({ command, args });
      throw {
        code: 'BINARY_UNAVAILABLE',
        message: 'No working sd for this machine: every build failed.',
        suggestion: 'Point Settings at a build of your own.',
      };
    });
    const setup = loadedSetup('diffusion');
    setup.status = fakeBinaryStatus('diffusion');
    render(BinarySetupCard, { setup });
    await fireEvent.click(screen.getByTestId('binary-validate'));

    const error = await screen.findByTestId('binary-error');
    expect(calls).toEqual([{ command: 'ensure_binary', args: { kind: 'diffusion', force_validation: true } }]);
    expect(error.dataset.errorCode).toBe('BINARY_UNAVAILABLE');
    expect(error.textContent).toContain('every build failed');
    expect(error.textContent).toContain('Point Settings at a build of your own.');
    expect(screen.getByTestId('binary-card').dataset.state).toBe('failed');
  });
});
