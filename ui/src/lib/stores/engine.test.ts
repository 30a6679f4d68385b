import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeDiskUsage, fakeDownload, fakeInstalledModels, fakeSample, fakeSettings, fakeSystemInfo } from '../fixtures';
import { applyEvent, createStores } from './engine';

afterEach(() => clearMocks());

describe('applyEvent', () => {
  it('routes each event to the store that owns its data, without the type tag', () => {
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
});
