import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeBinaryLog, fakeBinaryStatus } from '../fixtures';
import { BINARY_LOG_LIMIT, BinariesStore } from './binaries.svelte';

afterEach(() => clearMocks());

describe('BinariesStore', () => {
  it('loads each program\u2019s status from the engine', async () => {
    const asked: unknown[] = [];
    mockIPC((command, args) => {
      if (command !== 'binary_status') throw `unexpected ${command}`;
      asked.push(args);
      const { kind } = args as { kind: string };
      return kind === 'llama_server' ? fakeBinaryStatus('llama_server') : null;
    });
    const store = new BinariesStore();
    await store.load();
    expect(asked).toEqual([{ kind: 'llama_server' }, { kind: 'diffusion' }]);
    expect(store.llama_server.status).toEqual(fakeBinaryStatus('llama_server'));
    expect(store.diffusion.status).toBeNull();
    expect(store.llama_server.loaded && store.diffusion.loaded).toBe(true);
  });

  it('routes log lines by kind, newest last, keeping only the last lines', () => {
    const store = new BinariesStore();
    store.applyLog(fakeBinaryLog({ kind: 'diffusion', message: 'sd line' }));
    for (let index = 0; index < BINARY_LOG_LIMIT + 25; index += 1) {
      store.applyLog(fakeBinaryLog({ message: `line ${index}` }));
    }
    const log = store.llama_server.log;
    expect(log).toHaveLength(BINARY_LOG_LIMIT);
    expect(log[0]?.message).toBe('line 25');
    expect(log.at(-1)?.message).toBe(`line ${BINARY_LOG_LIMIT + 24}`);
    // Keys stay unique and increasing after trimming.
    expect(log.at(-1)!.seq).toBeGreaterThan(log[0]!.seq);
    expect(store.diffusion.log.map((line) => line.message)).toEqual(['sd line']);
  });

  it('shows download progress until the setup moves past the download', () => {
    const store = new BinariesStore();
    store.applyDownload({ kind: 'llama_server', variant: 'cpu', file: 'llama.tar.gz', bytes: 10, total: 100 });
    expect(store.llama_server.download).toEqual({ variant: 'cpu', file: 'llama.tar.gz', bytes: 10, total: 100 });
    expect(store.diffusion.download).toBeNull();
    store.applyLog(fakeBinaryLog({ step: 'download', message: 'fetching' }));
    expect(store.llama_server.download).not.toBeNull();
    store.applyLog(fakeBinaryLog({ step: 'verify', message: 'SHA-256 matches' }));
    expect(store.llama_server.download).toBeNull();
  });

  it('re-validates with force and keeps the new status; a refusal becomes the error', async () => {
    const calls: unknown[] = [];
    let fail = false;
    mockIPC((command, args) => {
      if (command !== 'ensure_binary') throw `unexpected ${command}`;
      calls.push(args);
      if (fail) {
        throw { code: 'BINARY_REJECTED', message: '/opt/llama-server was refused: exited with code 1', suggestion: 'Choose another build.' };
      }
      return fakeBinaryStatus('llama_server', { from_cache: false });
    });
    const store = new BinariesStore();
    const setup = store.llama_server;
    const running = setup.ensure(true);
    expect(setup.busy).toBe(true);
    await running;
    expect(setup.busy).toBe(false);
    expect(calls).toEqual([{ kind: 'llama_server', force_validation: true }]);
    expect(setup.status?.from_cache).toBe(false);
    expect(setup.error).toBeNull();

    fail = true;
    await setup.ensure(false);
    expect(setup.error).toEqual({
      code: 'BINARY_REJECTED',
      message: '/opt/llama-server was refused: exited with code 1',
      suggestion: 'Choose another build.',
    });
    expect(setup.status?.from_cache).toBe(false); // the last good status stays
  });
});
