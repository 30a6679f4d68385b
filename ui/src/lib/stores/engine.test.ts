import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  FAKE_ENDPOINT_URL,
  fakeBinaryLog,
  fakeBinaryStatus,
  fakeDiskUsage,
  fakeDownload,
  fakeImageServer,
  fakeJobSummary,
  fakeRoutedModel,
  fakeInstalledModels,
  fakeSample,
  fakeSettings,
  fakeSystemInfo,
} from '../fixtures';
import { applyEvent, createStores } from './engine';

afterEach(() => clearMocks());

describe('applyEvent', () => {
  it('routes each event to the store that owns its data, without the type tag', () => {
    // settings_changed makes the binaries store ask for their status.
    mockIPC((command) => (command === 'binary_status' ? null : undefined));
    const s = createStores();
    s.system.setInfo(fakeSystemInfo(1000));

    applyEvent(s, { type: 'system_sample', ...fakeSample(5000, 1) });
    applyEvent(s, { type: 'settings_changed', ...fakeSettings('dark') });
    applyEvent(s, { type: 'status_changed', llm: 'starting', diffusion: 'failed' });

    expect(s.system.info?.sampled_at_ms).toBe(5000);
    expect(s.settings.value).toEqual(fakeSettings('dark'));
    expect(s.status.value).toEqual({ llm: 'starting', diffusion: 'failed' });
    expect(s.status.shuttingDown).toBe(false);

    applyEvent(s, { type: 'shutting_down' });
    expect(s.status.shuttingDown).toBe(true);
  });

  it('sends download_changed and models_changed to the models store', () => {
    mockIPC((command) => (command === 'disk_usage' ? fakeDiskUsage() : null));
    const s = createStores();
    applyEvent(s, { type: 'download_changed', ...fakeDownload({ state: 'paused' }) });
    expect(s.models.downloads).toEqual([fakeDownload({ state: 'paused' })]);
    const models = fakeInstalledModels();
    applyEvent(s, { type: 'models_changed', models });
    expect(s.models.models).toEqual(models);
    s.models.dispose();
  });

  it('has the router store read the endpoint’s models again on orchestrator events', async () => {
    const asked: string[] = [];
    mockIPC((command) => {
      asked.push(command);
      if (command === 'routed_models') return [fakeRoutedModel({ state: 'loaded' })];
      if (command === 'endpoint_url') return FAKE_ENDPOINT_URL;
      return null;
    });
    const s = createStores();
    applyEvent(s, { type: 'orchestrator', kind: 'model_loaded', instance: 'x', reason: 'requested', load_ms: 5, ram_bytes: 1, vram_bytes: 0 });
    await vi.waitFor(() => expect(s.router.models.map((model) => model.state)).toEqual(['loaded']));
    expect(s.router.url).toBe(FAKE_ENDPOINT_URL);
    expect(asked).toContain('routed_models');
  });

  it('sends binary_log and binary_download to the program’s setup', () => {
    const s = createStores();
    applyEvent(s, { type: 'binary_download', kind: 'diffusion', variant: 'cpu', file: 'sd.zip', bytes: 5, total: 10 });
    expect(s.binaries.diffusion.download).toEqual({ variant: 'cpu', file: 'sd.zip', bytes: 5, total: 10 });
    applyEvent(s, { type: 'binary_log', ...fakeBinaryLog({ message: 'trying in this order: cpu', step: 'plan' }) });
    expect(s.binaries.llama_server.log.map((line) => line.message)).toEqual(['trying in this order: cpu']);
    expect(s.binaries.diffusion.log).toEqual([]);
  });

  it('asks which binaries are in use again when settings change (a new custom path)', async () => {
    const asked: string[] = [];
    mockIPC((command, args) => {
      if (command !== 'binary_status') throw `unexpected ${command}`;
      const { kind } = args as { kind: string };
      asked.push(kind);
      return kind === 'llama_server' ? fakeBinaryStatus('llama_server', { variant: null, path: '/opt/llama-server' }) : null;
    });
    const s = createStores();
    applyEvent(s, { type: 'settings_changed', ...fakeSettings(), llama_server_path: '/opt/llama-server' });
    await vi.waitFor(() => expect(s.binaries.llama_server.status?.path).toBe('/opt/llama-server'));
    expect(asked.sort()).toEqual(['diffusion', 'llama_server']);
  });

  it('sends image_server_changed and the window\u2019s own image_job_changed to the diffusion store', async () => {
    const asked: string[] = [];
    mockIPC((command) => {
      // The monitor store refreshes its status on the same events; not this test's subject.
      if (command === 'orchestrator_status' || command === 'image_server_status') return null;
      asked.push(command);
      if (command === 'generate_image') return 'img_000001_0a1b2c3d';
      if (command === 'image_job') return { ...fakeJobSummary({ status: 'pending' }), queue_position: 0, result: null };
      throw `unexpected ${command}`;
    });
    const s = createStores();
    applyEvent(s, { type: 'image_server_changed', server: fakeImageServer() });
    expect(s.diffusion.server?.url).toBe('http://127.0.0.1:8081');
    await s.diffusion.generate({
      prompt: 'a cat', negative_prompt: '', width: 64, height: 64, steps: 1, cfg_scale: 1, sampler: null,
      scheduler: null, seed: null, count: 1, overrides: { clip_on_cpu: null, vae_on_cpu: null, vae_tiling: null },
    });
    applyEvent(s, { type: 'image_job_changed', ...fakeJobSummary({ eta_seconds: 3 }) });
    expect(s.diffusion.job).toEqual(fakeJobSummary({ eta_seconds: 3 }));
    expect(asked).toEqual(['generate_image', 'image_job']);
    applyEvent(s, { type: 'image_server_changed', server: null });
    expect(s.diffusion.server).toBeNull();
  });
});
