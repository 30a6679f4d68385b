// The five tabs, in order, and their place in the URL hash.
export const TABS = [
  { id: 'system', label: 'System' },
  { id: 'models', label: 'Models' },
  { id: 'llm', label: 'LLM' },
  { id: 'diffusion', label: 'Diffusion' },
  { id: 'monitor', label: 'Resource Monitor' },
] as const;

export type TabId = (typeof TABS)[number]['id'];

export const DEFAULT_TAB: TabId = 'system';

export function isTabId(value: string): value is TabId {
  return TABS.some((tab) => tab.id === value);
}

/** `#llm` → `llm`; anything unknown → the System tab. */
export function tabFromHash(hash: string): TabId {
  const id = hash.replace(/^#\/?/, '');
  return isTabId(id) ? id : DEFAULT_TAB;
}

/** The tab `step` places away from `current`, wrapping around. */
export function neighbourTab(current: TabId, step: number): TabId {
  const index = TABS.findIndex((tab) => tab.id === current);
  const next = (index + step + TABS.length) % TABS.length;
  return TABS[next]?.id ?? DEFAULT_TAB;
}
