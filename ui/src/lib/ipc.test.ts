import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EngineEvent } from '../bindings/EngineEvent';
import { fakeSettings, fakeSystemInfo } from './fixtures';
import { ENGINE_EVENT, ipc, toErrorReport, untagged } from './ipc';

afterEach(() => clearMocks());

describe('toErrorReport', () => {
  it('keeps an ErrorReport from the engine as it is', () => {
    const report = { code: 'INVALID_SETTING', message: 'Invalid endpoint_port', suggestion: 'Correct it.' };
    expect(toErrorReport(report)).toEqual(report);
  });

  it('turns anything else into an INTERNAL report with the text as message', () => {
    expect(toErrorReport('window closed')).toEqual({ code: 'INTERNAL', message: 'window closed', suggestion: '' });
    expect(toErrorReport(new Error('boom'))).toEqual({ code: 'INTERNAL', message: 'boom', suggestion: '' });
    expect(toErrorReport(undefined)).toEqual({ code: 'INTERNAL', message: 'undefined', suggestion: '' });
    expect(toErrorReport({ code: 'not a code', message: 'x', suggestion: '' }).code).toBe('INTERNAL');
    expect(toErrorReport({ code: 'ADDED_LATER', message: 'x', suggestion: '' }).code).toBe('ADDED_LATER');
    expect(toErrorReport({ message: 'no code' }).code).toBe('INTERNAL');
  });
});

describe('ipc', () => {
  it('calls the engine commands by name with their arguments', async () => {
    const calls: Array<[string, unknown]> = [];
    mockIPC((command, args) => {
      calls.push([command, args]);
      if (command === 'system_info') return fakeSystemInfo(1);
      if (command === 'save_settings') return { settings: (args as { settings: unknown }).settings, restart_required: false };
      return null;
    });
    expect((await ipc.systemInfo()).cpu.logical_cores).toBe(16);
    const settings = fakeSettings('dark');
    expect(await ipc.saveSettings(settings)).toEqual({ settings, restart_required: false });
    expect(calls.map(([command]) => command)).toEqual(['system_info', 'save_settings']);
    expect(calls[1]?.[1]).toEqual({ settings });
  });

  it('rejects with an ErrorReport, whatever the failure looked like', async () => {
    mockIPC((command) => {
      if (command === 'save_settings') {
        throw { code: 'INVALID_SETTING', message: 'port 80 is reserved', suggestion: 'Correct the value and save again.' };
      }
      throw 'command not allowed';
    });
    await expect(ipc.saveSettings(fakeSettings())).rejects.toEqual({
      code: 'INVALID_SETTING',
      message: 'port 80 is reserved',
      suggestion: 'Correct the value and save again.',
    });
    await expect(ipc.getSettings()).rejects.toEqual({
      code: 'INTERNAL',
      message: 'command not allowed',
      suggestion: '',
    });
  });

  it('delivers engine events with their payload', async () => {
    mockIPC(() => null, { shouldMockEvents: true });
    const handler = vi.fn();
    const unlisten = await ipc.onEngineEvent(handler);
    const event: EngineEvent = { type: 'status_changed', llm: 'running', diffusion: 'stopped' };
    await emit(ENGINE_EVENT, event);
    expect(handler).toHaveBeenCalledWith(event);
    unlisten();
  });
});

describe('model commands', () => {
  it('pass their arguments under the Rust parameter names', async () => {
    const calls: Array<[string, unknown]> = [];
    mockIPC((command, args) => {
      calls.push([command, args]);
      if (command === 'add_model') return 'model-id';
      if (command.startsWith('list_') || command === 'hub_files') return [];
      return null;
    });
    const location = { type: 'hub' as const, repo: 'owner/name', revision: 'main', path: 'm.gguf' };
    const add = { name: 'M', kind: 'llm' as const, files: [{ location, role: 'weights' as const, expected_sha256: null }] };
    await ipc.listModels();
    await ipc.listDownloads();
    await ipc.diskUsage();
    await ipc.hubFiles('owner/name', 'main');
    await ipc.inspectModel(location);
    expect(await ipc.addModel(add)).toBe('model-id');
    await ipc.pauseDownload('a');
    await ipc.resumeDownload('b');
    await ipc.cancelDownload('c');
    await ipc.verifyModel('d');
    await ipc.deleteModel('e');
    expect(calls).toEqual([
      ['list_models', {}],
      ['list_downloads', {}],
      ['disk_usage', {}],
      ['hub_files', { repo: 'owner/name', revision: 'main' }],
      ['inspect_model', { location }],
      ['add_model', { add }],
      ['pause_download', { id: 'a' }],
      ['resume_download', { id: 'b' }],
      ['cancel_download', { id: 'c' }],
      ['verify_model', { id: 'd' }],
      ['delete_model', { id: 'e' }],
    ]);
  });

  it('reject a damaged model with CHECKSUM_MISMATCH', async () => {
    mockIPC(() => {
      throw { code: 'CHECKSUM_MISMATCH', message: 'm.gguf is damaged', suggestion: 'Download it again.' };
    });
    await expect(ipc.verifyModel('m')).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
  });
});

describe('untagged', () => {
  it('drops the type tag and keeps the rest', () => {
    const event = { type: 'settings_changed' as const, ...fakeSettings('light') };
    expect(untagged(event)).toEqual(fakeSettings('light'));
  });
});

describe('daemon commands', () => {
  it('pass their arguments under the Rust parameter names', async () => {
    const calls: Array<[string, unknown]> = [];
    mockIPC((command, args) => {
      calls.push([command, args]);
      return command === 'daemon_logs' ? [] : null;
    });
    await ipc.attachedDaemon();
    await ipc.daemonInstance('chat');
    await ipc.daemonUp('chat');
    await ipc.daemonDown('chat');
    await ipc.daemonRestart('chat');
    await ipc.daemonLogs('chat', 5, 100);
    await ipc.daemonReload();
    expect(calls).toEqual([
      ['attached_daemon', {}],
      ['daemon_instance', { name: 'chat' }],
      ['daemon_up', { name: 'chat' }],
      ['daemon_down', { name: 'chat' }],
      ['daemon_restart', { name: 'chat' }],
      ['daemon_logs', { name: 'chat', since: 5, limit: 100 }],
      ['daemon_reload', {}],
    ]);
  });
});
