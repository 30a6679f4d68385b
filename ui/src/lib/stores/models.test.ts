import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DiskUsage } from '../../bindings/DiskUsage';
import type { DownloadStatus } from '../../bindings/DownloadStatus';
import type { InstalledModel } from '../../bindings/InstalledModel';
import { fakeDiskUsage, fakeDownload, fakeInstalledModels } from '../fixtures';
import { FINAL_ROW_MS, ModelsStore } from './models.svelte';

let models: InstalledModel[];
let downloads: DownloadStatus[];
let disk: DiskUsage;
let calls: Array<[string, unknown]>;

beforeEach(() => {
  models = fakeInstalledModels();
  downloads = [fakeDownload()];
  disk = fakeDiskUsage();
  calls = [];
  mockIPC((command, args) => {
    calls.push([command, args]);
    switch (command) {
      case 'list_models':
        return models;
      case 'list_downloads':
        return downloads;
      case 'disk_usage':
        return disk;
      case 'add_model':
        return 'new-model';
      case 'delete_model':
        return null;
    }
    throw `unexpected ${command}`;
  });
});

afterEach(() => {
  vi.useRealTimers();
  clearMocks();
});

const count = (command: string) => calls.filter(([name]) => name === command).length;
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('ModelsStore', () => {
  it('loads models, downloads and disk use once', async () => {
    const store = new ModelsStore();
    expect(store.loaded).toBe(false);
    await store.load();
    expect(store.loaded).toBe(true);
    expect(store.models.map((model) => model.id)).toEqual(models.map((model) => model.id));
    expect(store.downloads).toEqual(downloads);
    expect(store.disk).toEqual(disk);
    expect(store.error).toBeNull();
  });

  it('keeps why the library could not be listed', async () => {
    mockIPC((command) => {
      if (command === 'list_models') throw { code: 'STORAGE_UNAVAILABLE', message: 'models.json unreadable', suggestion: 'Check the disk.' };
      if (command === 'list_downloads') return [];
      return disk;
    });
    const store = new ModelsStore();
    await store.load();
    expect(store.error?.code).toBe('STORAGE_UNAVAILABLE');
    expect(store.loaded).toBe(true);
  });

  it('patches a download by id from download_changed and adds new ones', async () => {
    const store = new ModelsStore();
    await store.load();
    store.applyDownload(fakeDownload({ bytes: 2_000_000_000, speed_bps: 9_000_000, eta_seconds: 300 }));
    expect(store.downloads).toHaveLength(1);
    expect(store.downloads[0]?.bytes).toBe(2_000_000_000);
    expect(store.downloads[0]?.eta_seconds).toBe(300);

    store.applyDownload(fakeDownload({ id: 'other', name: 'Other', bytes: 0 }));
    expect(store.downloads.map((download) => download.id)).toEqual([downloads[0]!.id, 'other']);
  });

  it('shows a complete or cancelled download for a moment, then removes it', async () => {
    const store = new ModelsStore();
    await store.load();
    vi.useFakeTimers();
    store.applyDownload(fakeDownload({ id: 'other', name: 'Other' }));
    store.applyDownload(fakeDownload({ state: 'complete', bytes: 4_683_073_536, speed_bps: 0, eta_seconds: 0 }));
    store.applyDownload(fakeDownload({ id: 'other', name: 'Other', state: 'cancelled' }));

    expect(store.downloads.map((download) => download.state)).toEqual(['complete', 'cancelled']);
    vi.advanceTimersByTime(FINAL_ROW_MS - 1);
    expect(store.downloads).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(store.downloads).toEqual([]);
  });

  it('keeps a download that moved on again before its removal', async () => {
    const store = new ModelsStore({ finalRowMs: 50 });
    vi.useFakeTimers();
    store.applyDownload(fakeDownload({ state: 'cancelled' }));
    store.applyDownload(fakeDownload({ state: 'downloading', bytes: 0 }));
    vi.advanceTimersByTime(100);
    expect(store.downloads.map((download) => download.state)).toEqual(['downloading']);
  });

  it('does not bring back an ended download from an older listing', async () => {
    const store = new ModelsStore({ finalRowMs: 0 });
    // The event arrives before the start-up query answers.
    store.applyDownload(fakeDownload({ state: 'complete' }));
    await store.load();
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(store.downloads).toEqual([]);
  });

  it('prefers events to a listing that was on its way', async () => {
    const store = new ModelsStore();
    const loading = store.load();
    store.applyDownload(fakeDownload({ state: 'paused', speed_bps: 0 }));
    store.setModels([]);
    await loading;
    expect(store.downloads.map((download) => download.state)).toEqual(['paused']);
    expect(store.models).toEqual([]);
  });

  it('replaces the models on models_changed and refreshes disk use', async () => {
    const store = new ModelsStore();
    await store.load();
    const before = count('disk_usage');
    disk = { models_bytes: 1, partial_bytes: 0, free_bytes: null };
    store.setModels(models.slice(1));
    await flush();
    expect(store.models.map((model) => model.id)).toEqual([models[1]!.id]);
    expect(count('disk_usage')).toBe(before + 1);
    expect(store.disk).toEqual(disk);
  });

  it('refreshes disk use when a download settles, not on every progress event', async () => {
    const store = new ModelsStore();
    await store.load();
    const before = count('disk_usage');
    store.applyDownload(fakeDownload({ bytes: 1 }));
    store.applyDownload(fakeDownload({ bytes: 2 }));
    await flush();
    expect(count('disk_usage')).toBe(before);
    store.applyDownload(fakeDownload({ state: 'paused' }));
    await flush();
    expect(count('disk_usage')).toBe(before + 1);
    store.applyDownload(fakeDownload({ state: 'paused' }));
    await flush();
    expect(count('disk_usage')).toBe(before + 1);
  });

  it('lists downloads after add_model so the new row shows at once', async () => {
    const store = new ModelsStore();
    await store.load();
    downloads = [...downloads, fakeDownload({ id: 'new-model', name: 'New', bytes: 0 })];
    const add = {
      name: 'New',
      kind: 'llm' as const,
      files: [{ location: { type: 'url' as const, url: 'https://example.com/new.gguf' }, role: 'weights' as const, expected_sha256: null }],
    };
    await expect(store.add(add)).resolves.toBe('new-model');
    expect(calls.find(([name]) => name === 'add_model')?.[1]).toEqual({ add });
    expect(store.downloads.map((download) => download.id)).toEqual([downloads[0]!.id, 'new-model']);
  });

  it('removes a deleted model at once', async () => {
    const store = new ModelsStore();
    await store.load();
    await store.remove(models[0]!.id);
    expect(calls.find(([name]) => name === 'delete_model')?.[1]).toEqual({ id: models[0]!.id });
    expect(store.models.map((model) => model.id)).toEqual([models[1]!.id]);
  });
});
