// The LLM tab attached to a `switchyard daemon`: its group in the instance list, the
// detail of a daemon instance driven through the daemon, its problems, and an app
// instance that the daemon owns.
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttachedDaemon } from '../../bindings/AttachedDaemon';
import type { ErrorReport } from '../../bindings/ErrorReport';
import { fakeAttachedDaemon, fakeBinaryStatus, fakeDaemonInstance, fakeInstance } from '../../lib/fixtures';
import { BinarySetup } from '../../lib/stores/binaries.svelte';
import { DaemonStore } from '../../lib/stores/daemon.svelte';
import { LlamaStore } from '../../lib/stores/llama.svelte';
import { ModelsStore } from '../../lib/stores/models.svelte';
import LlmTab from './LlmTab.svelte';
import StatusCard from './StatusCard.svelte';

let calls: Array<[string, Record<string, unknown>]>;
let failures: Record<string, ErrorReport>;

beforeEach(() => {
  calls = [];
  failures = {};
  mockIPC((command, args) => {
    calls.push([command, (args ?? {}) as Record<string, unknown>]);
    if (failures[command]) throw failures[command];
    switch (command) {
      case 'daemon_instance':
        return fakeDaemonInstance();
      case 'daemon_down':
        return fakeDaemonInstance('stopped').status;
      case 'daemon_logs':
        return [{ seq: 0, time: null, level: 'info', tag: 'srv', source: null, message: 'server is listening' }];
      case 'daemon_reload':
        return fakeAttachedDaemon().status;
    }
    return null;
  });
});

afterEach(() => {
  cleanup();
  clearMocks();
});

function renderTab(attached: AttachedDaemon | null = fakeAttachedDaemon()) {
  const binary = new BinarySetup('llama_server');
  binary.loaded = true;
  binary.status = fakeBinaryStatus('llama_server');
  const store = new LlamaStore();
  store.loaded = true;
  const daemon = new DaemonStore();
  daemon.set(attached);
  render(LlmTab, { binary, store, daemon, models: new ModelsStore() });
  return daemon;
}

const commands = (name: string) => calls.filter(([command]) => command === name).map(([, args]) => args);

describe('the LLM tab with a daemon', () => {
  it('shows nothing of a daemon when none runs', () => {
    renderTab(null);
    expect(screen.queryByTestId('daemon-group')).toBeNull();
  });

  it('lists the daemon with its instances and the files it could not use', () => {
    renderTab();
    const group = screen.getByTestId('daemon-group');
    expect(screen.getByTestId('daemon-title').textContent).toBe('Switchyard daemon · pid 4100 · 0.1.0');
    const row = within(group).getByTestId('daemon-instance-row');
    expect(row.dataset.name).toBe('chat');
    expect(row.dataset.state).toBe('healthy');
    expect(row.textContent).toContain(':41234');
    expect(within(row).getByTestId('daemon-instance-row-endpoint').textContent).toBe('http://127.0.0.1:41300/v1');
    const problem = within(screen.getByTestId('daemon-problems')).getByTestId('daemon-problem');
    expect(problem.dataset.code).toBe('INVALID_INSTANCE_FILE');
    expect(problem.textContent).toContain('big.toml');
  });

  it('shows a selected daemon instance and stops it through the daemon', async () => {
    const daemon = renderTab();
    await fireEvent.click(screen.getByTestId('daemon-instance-row'));
    expect(screen.getByTestId('daemon-state').dataset.state).toBe('healthy');
    expect(screen.getByTestId('daemon-pid').textContent).toBe('4242');
    expect(screen.getByTestId('daemon-endpoint').textContent).toBe('http://127.0.0.1:41300/v1');
    expect(screen.getByTestId('daemon-owner').textContent).toBe('Run by the Switchyard daemon (pid 4100)');
    await waitFor(() =>
      expect(screen.getByTestId('daemon-file').textContent).toBe('/home/me/.config/switchyard/instances/chat.toml'),
    );
    expect(commands('daemon_instance')).toContainEqual({ name: 'chat' });
    await waitFor(() => expect(screen.getAllByTestId('llm-log-line').length).toBeGreaterThan(0));

    await fireEvent.click(screen.getByTestId('daemon-stop'));
    await waitFor(() => expect(commands('daemon_down')).toEqual([{ name: 'chat' }]));
    // The engine announces the change; Start then drives the daemon again.
    daemon.set(fakeAttachedDaemon('stopped'));
    await waitFor(() => expect(screen.getByTestId('daemon-start')).toBeTruthy());
    expect(screen.getByTestId('daemon-state').dataset.state).toBe('stopped');

    await fireEvent.click(screen.getByTestId('daemon-reload'));
    await waitFor(() => expect(commands('daemon_reload')).toHaveLength(1));
  });

  it("shows the daemon's own error when a call through it fails", async () => {
    failures.daemon_down = {
      code: 'DAEMON_UNREACHABLE',
      message: 'The Switchyard daemon at /data/daemon.json does not answer: no Switchyard daemon runs on this data folder',
      suggestion: 'Check it with `switchyard daemon status`.',
    };
    renderTab();
    await fireEvent.click(screen.getByTestId('daemon-instance-row'));
    await fireEvent.click(screen.getByTestId('daemon-stop'));
    await waitFor(() => expect(screen.getByTestId('daemon-error').textContent).toContain('does not answer'));
  });

  it('goes back to nothing when the daemon ends', async () => {
    const daemon = renderTab();
    await fireEvent.click(screen.getByTestId('daemon-instance-row'));
    daemon.set(null);
    await waitFor(() => expect(screen.queryByTestId('daemon-group')).toBeNull());
    expect(screen.queryByTestId('daemon-status')).toBeNull();
  });
});

describe('an app instance the daemon runs', () => {
  it('names its owner and cannot be started here', () => {
    const store = new LlamaStore();
    const instance = { ...fakeInstance('chat'), owned_by: { kind: 'daemon' as const, pid: 4100 } };
    render(StatusCard, { store, instance, beforeStart: () => Promise.resolve(true), onRemove: () => {} });
    expect(screen.getByTestId('llm-owner').textContent).toContain('Run by the Switchyard daemon (pid 4100)');
    const start = screen.getByTestId('llm-start') as HTMLButtonElement;
    expect(start.disabled).toBe(true);
    expect(start.title).toContain('Run by the Switchyard daemon (pid 4100)');
  });
});
