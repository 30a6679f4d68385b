import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogLine } from '../../bindings/LogLine';
import { fakeAttachedDaemon, fakeDaemonInstance } from '../fixtures';
import { applyEvent, createStores } from './engine';

afterEach(() => clearMocks());

const line = (seq: number): LogLine => ({ seq, time: null, level: 'info', tag: 'srv', source: null, message: `line ${seq}` });

describe('DaemonStore', () => {
  it('follows daemon_changed and forgets a selection the daemon no longer has', async () => {
    mockIPC((command) => (command === 'daemon_instance' ? fakeDaemonInstance() : null));
    const s = createStores();
    applyEvent(s, { type: 'daemon_changed', daemon: fakeAttachedDaemon() });
    expect(s.daemon.attached?.status.pid).toBe(4100);
    s.daemon.select('chat');
    expect(s.daemon.current?.name).toBe('chat');
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(s.daemon.detail?.file).toMatch(/chat\.toml$/);

    applyEvent(s, { type: 'daemon_changed', daemon: null });
    expect(s.daemon.attached).toBeNull();
    expect(s.daemon.selected).toBeNull();
    expect(s.daemon.detail).toBeNull();
  });

  it("asks the daemon for the lines after those it has, and keeps each once", async () => {
    const asked: number[] = [];
    mockIPC((command, args) => {
      if (command !== 'daemon_logs') return null;
      const since = (args as { since: number }).since;
      asked.push(since);
      return since === 0 ? [line(0), line(1)] : [line(1), line(2)];
    });
    const s = createStores();
    await s.daemon.loadLogs('chat');
    await s.daemon.loadLogs('chat');
    expect(asked).toEqual([0, 2]);
    expect(s.daemon.logs.chat.map((l) => l.seq)).toEqual([0, 1, 2]);
  });
});
