import { afterEach, describe, expect, it, vi } from 'vitest';
import { applyTheme, nextTheme } from './theme';

function fakeMatchMedia(dark: boolean) {
  const listeners = new Set<() => void>();
  const query = {
    matches: dark,
    addEventListener: (_: string, listener: () => void) => listeners.add(listener),
    removeEventListener: (_: string, listener: () => void) => listeners.delete(listener),
  };
  vi.stubGlobal('matchMedia', () => query);
  return {
    set(next: boolean) {
      query.matches = next;
      listeners.forEach((listener) => listener());
    },
    listeners,
  };
}

afterEach(() => vi.unstubAllGlobals());

describe('theme', () => {
  it('cycles system → light → dark → system', () => {
    expect(nextTheme('system')).toBe('light');
    expect(nextTheme('light')).toBe('dark');
    expect(nextTheme('dark')).toBe('system');
  });

  it('puts an explicit theme on <html>', () => {
    fakeMatchMedia(true);
    const root = document.createElement('html');
    applyTheme('light', root);
    expect(root.dataset.theme).toBe('light');
    applyTheme('dark', root);
    expect(root.dataset.theme).toBe('dark');
  });

  it('follows the system preference while set to system, until cleaned up', () => {
    const media = fakeMatchMedia(false);
    const root = document.createElement('html');
    const stop = applyTheme('system', root);
    expect(root.dataset.theme).toBe('light');
    expect(root.dataset.themeSetting).toBe('system');
    media.set(true);
    expect(root.dataset.theme).toBe('dark');
    stop();
    expect(media.listeners.size).toBe(0);
  });
});
