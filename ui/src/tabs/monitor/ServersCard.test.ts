import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type { OrchestratorStatus } from '../../bindings/OrchestratorStatus';
import { fakeImageServer, fakeInstance } from '../../lib/fixtures';
import { MonitorStore } from '../../lib/stores/monitor.svelte';
import ServersCard from './ServersCard.svelte';

function orchestrator(llm: OrchestratorStatus['llm']): OrchestratorStatus {
  return {
    phase: 'idle',
    policy: { threshold: 0.75, memory_wait_ms: 30_000, reload_attempts: 4, reload_backoff_ms: 1000, poll_ms: 100, max_window_ms: 60_000, chat_turn_ms: 30_000, drain_ms: 30_000 },
    saved: null,
    llm,
    next_image: null,
    endpoints: [
      {
        name: 'default',
        url: 'http://127.0.0.1:41300',
        activity: { held: 3, in_flight: 1, forwarded: 12, refused: 0 },
      },
    ],
    saved_slots: { enabled: true, folder: '/data/kv-cache', bytes: 0, files: 0, budget_bytes: 4 * 2 ** 30 },
  };
}

describe('ServersCard', () => {
  it('shows each LLM server with the memory the engine counts for it, and the image server', () => {
    const store = new MonitorStore();
    store.orchestrator = orchestrator([{ name: 'default', ram_bytes: 52 * 2 ** 20, vram_bytes: 0, basis: 'measured' }]);
    store.imageServer = { info: fakeImageServer(), busy: true, queued: 2, active_pid: 777 };
    render(ServersCard, { store, instances: [fakeInstance('default', 'healthy'), fakeInstance('spare', 'stopped')] });

    const [running, stopped] = screen.getAllByTestId('monitor-llm-row');
    expect(running.dataset.state).toBe('healthy');
    expect(running.textContent).toContain('52 MiB RAM');
    expect(running.textContent).toContain('(measured)');
    expect(running.textContent).not.toContain('VRAM');
    expect(running.textContent).toContain(':41300');
    expect(running.textContent).toContain('3 waiting');
    expect(stopped.textContent).toContain('—');
    expect(screen.getByTestId('monitor-image-state').textContent).toBe('busy');
    expect(screen.getByTestId('monitor-image').textContent).toContain('2 waiting · sd pid 777');
  });

  it('says when the image server is stopped', () => {
    render(ServersCard, { store: new MonitorStore(), instances: [] });
    expect(screen.getByTestId('monitor-image-state').textContent).toBe('Stopped');
    expect(screen.getByTestId('monitor-llm').textContent).toContain('No LLM instance yet.');
  });
});
