import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it } from 'vitest';
import type { ImageServerStatus } from '../../bindings/ImageServerStatus';
import { fakeImageServer } from '../fixtures';
import { MonitorStore } from './monitor.svelte';

afterEach(() => clearMocks());

describe('MonitorStore.refresh', () => {
  it('reads again after an in-flight read when an event asked meanwhile, so the last change shows', async () => {
    // The first read answers with the state from before the event (stopped); the
    // event that asks for the second arrives while the first is in flight.
    const answers: Array<ImageServerStatus | null> = [null, { info: fakeImageServer(), busy: false, queued: 0, active_pid: null }];
    let reads = 0;
    let releaseFirst: () => void = () => {};
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    mockIPC(async (command) => {
      if (command === 'orchestrator_status') return null;
      if (command === 'image_server_status') {
        const answer = answers[Math.min(reads, answers.length - 1)];
        reads += 1;
        if (reads === 1) await firstHeld;
        return answer;
      }
      return null;
    });
    const store = new MonitorStore();
    const first = store.refresh();
    const second = store.refresh();
    releaseFirst();
    await Promise.all([first, second]);
    expect(reads).toBe(2);
    expect(store.imageServer?.busy).toBe(false);
  });
});
