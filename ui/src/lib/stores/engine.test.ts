import { describe, expect, it } from 'vitest';
import { fakeSample, fakeSettings, fakeSystemInfo } from '../fixtures';
import { applyEvent, createStores } from './engine';

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
});
