import { describe, expect, it } from 'vitest';
import { TABS, neighbourTab, tabFromHash } from './tabs';

describe('tabs', () => {
  it('come in the product order', () => {
    expect(TABS.map((tab) => tab.id)).toEqual(['system', 'models', 'llm', 'diffusion', 'monitor']);
  });

  it('read the active tab from the URL hash, defaulting to System', () => {
    expect(tabFromHash('#llm')).toBe('llm');
    expect(tabFromHash('#/monitor')).toBe('monitor');
    expect(tabFromHash('')).toBe('system');
    expect(tabFromHash('#nope')).toBe('system');
  });

  it('wrap around for arrow keys', () => {
    expect(neighbourTab('system', 1)).toBe('models');
    expect(neighbourTab('system', -1)).toBe('monitor');
    expect(neighbourTab('monitor', 1)).toBe('system');
  });
});
