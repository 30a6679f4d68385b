// Puts the chosen theme on <html data-theme="light|dark">; `system` follows the OS.
import type { Theme } from '../bindings/Theme';

const DARK_QUERY = '(prefers-color-scheme: dark)';

export const THEME_ORDER: readonly Theme[] = ['system', 'light', 'dark'];

export const THEME_LABELS: Record<Theme, string> = {
  system: 'System',
  light: 'Light',
  dark: 'Dark',
};

/** The theme after `theme` in the toggle's cycle: system → light → dark → system. */
export function nextTheme(theme: Theme): Theme {
  return THEME_ORDER[(THEME_ORDER.indexOf(theme) + 1) % THEME_ORDER.length] ?? 'system';
}

function systemPrefersDark(): boolean {
  return typeof window.matchMedia === 'function' && window.matchMedia(DARK_QUERY).matches;
}

export function resolveTheme(theme: Theme): 'light' | 'dark' {
  if (theme === 'system') return systemPrefersDark() ? 'dark' : 'light';
  return theme;
}

/** Applies `theme` now and, for `system`, on every OS change. Returns the cleanup. */
export function applyTheme(theme: Theme, root: HTMLElement = document.documentElement): () => void {
  const apply = () => {
    root.dataset.theme = resolveTheme(theme);
    root.dataset.themeSetting = theme;
  };
  apply();
  if (theme !== 'system' || typeof window.matchMedia !== 'function') return () => {};
  const query = window.matchMedia(DARK_QUERY);
  query.addEventListener('change', apply);
  return () => query.removeEventListener('change', apply);
}
