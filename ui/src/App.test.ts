import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import App from './App.svelte';
import type { ErrorReport } from './bindings/ErrorReport';
import type { Settings } from './bindings/Settings';
import {
  FAKE_ENDPOINT_URL,
  fakeAppInfo,
  fakeAttachedDaemon,
  fakeDiskUsage,
  fakeDownload,
  fakeInstalledModels,
  fakeRoutedModels,
  fakeSample,
  fakeSettings,
  fakeStatus,
  fakeSystemInfo,
} from './lib/fixtures';
import { ENGINE_EVENT } from './lib/ipc';
import { createStores } from './lib/stores/engine';

const TAB_IDS = ['system', 'models', 'llm', 'diffusion', 'monitor'];
let saved: Settings[] = [];
let warnings: ErrorReport[] = [];
let refuseSave: ErrorReport | null = null;

beforeEach(() => {
  saved = [];
  warnings = [];
  refuseSave = null;
  window.history.replaceState(null, '', '/');
  let settings = fakeSettings('system');
  mockIPC(
    (command, args) => {
      switch (command) {
        case 'system_info':
          return fakeSystemInfo(1_000);
        case 'engine_status':
          return fakeStatus;
        case 'get_settings':
          return settings;
        case 'app_info':
          return fakeAppInfo;
        case 'startup_warnings':
          return warnings;
        case 'list_models':
          return fakeInstalledModels();
        case 'list_downloads':
          return [fakeDownload()];
        case 'disk_usage':
          return fakeDiskUsage();
        case 'routed_models':
          return fakeRoutedModels();
        case 'endpoint_url':
          return FAKE_ENDPOINT_URL;
        case 'save_settings':
          if (refuseSave) throw refuseSave;
          settings = (args as { settings: Settings }).settings;
          saved.push(settings);
          return { settings, restart_required: false };
      }
      throw `unknown command ${command}`;
    },
    { shouldMockEvents: true },
  );
});

afterEach(async () => {
  // Unmount first: the App unsubscribes from events through the mocked IPC.
  cleanup();
  await new Promise((resolve) => setTimeout(resolve, 0));
  clearMocks();
});

async function renderReady() {
  const result = render(App, { stores: createStores() });
  await waitFor(() => expect(screen.getByTestId('app-root').dataset.ready).toBe('true'));
  // Everything queried at start has answered (the About section is the last to fill).
  await waitFor(() => expect(screen.getByTestId('about-version').textContent).toBe('0.1.0'));
  return result;
}

const tab = (id: string) => screen.getByTestId(`tab-${id}`);
const panel = (id: string) => screen.getByTestId(`panel-${id}`);

describe('App', () => {
  it('marks itself ready once system_info has loaded', async () => {
    await renderReady();
    expect(document.documentElement.dataset.ready).toBe('true');
    expect(screen.getByTestId('cpu-threads').textContent).toBe('16');
    expect(screen.getByTestId('status-llm').dataset.state).toBe('stopped');
  });

  it('has five tabs in order with ARIA wiring', async () => {
    await renderReady();
    const tabs = screen.getAllByRole('tab');
    expect(tabs.map((t) => t.dataset.testid)).toEqual(TAB_IDS.map((id) => `tab-${id}`));
    expect(tabs.map((t) => t.textContent?.trim())).toEqual(['System', 'Models', 'LLM', 'Diffusion', 'Resource Monitor']);
    for (const id of TAB_IDS) {
      expect(tab(id).getAttribute('aria-controls')).toBe(`panel-${id}`);
      expect(panel(id).getAttribute('role')).toBe('tabpanel');
      expect(panel(id).getAttribute('aria-labelledby')).toBe(`tab-${id}`);
    }
    expect(tab('system').getAttribute('aria-selected')).toBe('true');
    expect(tab('system').tabIndex).toBe(0);
    expect(tab('models').tabIndex).toBe(-1);
  });

  it('switches tabs on click, keeps every panel mounted, and remembers the tab in the hash', async () => {
    await renderReady();
    await fireEvent.click(tab('llm'));

    expect(tab('llm').getAttribute('aria-selected')).toBe('true');
    expect(tab('system').getAttribute('aria-selected')).toBe('false');
    expect(panel('llm').hidden).toBe(false);
    expect(panel('system').hidden).toBe(true);
    // Hidden, not gone: the System tab's content is still in the document.
    expect(panel('system').contains(screen.getByTestId('cpu-threads'))).toBe(true);
    expect(window.location.hash).toBe('#llm');

    for (const id of TAB_IDS) expect(panel(id).childElementCount).toBeGreaterThan(0);
  });

  it('shows the Switchyard endpoint first in the LLM tab, and its models in the Models tab', async () => {
    await renderReady();
    await waitFor(() => expect(screen.getByTestId('endpoint-url').textContent).toBe(FAKE_ENDPOINT_URL));
    const cards = panel('llm').querySelectorAll<HTMLElement>('[data-testid$="-card"]');
    expect(cards[0]?.dataset.testid).toBe('endpoint-card');
    const rows = panel('models').querySelectorAll<HTMLElement>('[data-testid="router-row"]');
    expect([...rows].map((row) => row.dataset.id)).toEqual(fakeRoutedModels().map((model) => model.id));
  });

  it('moves with the arrow keys, Home and End', async () => {
    await renderReady();
    tab('system').focus();

    await fireEvent.keyDown(tab('system'), { key: 'ArrowRight' });
    expect(tab('models').getAttribute('aria-selected')).toBe('true');
    expect(document.activeElement).toBe(tab('models'));

    await fireEvent.keyDown(tab('models'), { key: 'ArrowLeft' });
    await fireEvent.keyDown(tab('system'), { key: 'ArrowLeft' });
    expect(tab('monitor').getAttribute('aria-selected')).toBe('true');
    expect(panel('monitor').hidden).toBe(false);

    await fireEvent.keyDown(tab('monitor'), { key: 'Home' });
    expect(tab('system').getAttribute('aria-selected')).toBe('true');
    await fireEvent.keyDown(tab('system'), { key: 'End' });
    expect(tab('monitor').getAttribute('aria-selected')).toBe('true');
    expect(window.location.hash).toBe('#monitor');
  });

  it('opens the tab named in the URL hash', async () => {
    window.history.replaceState(null, '', '/#diffusion');
    await renderReady();
    expect(tab('diffusion').getAttribute('aria-selected')).toBe('true');
    expect(panel('system').hidden).toBe(true);
  });

  it('patches the System tab from engine events', async () => {
    await renderReady();
    const sample = fakeSample(5_000, 3);
    await emit(ENGINE_EVENT, { type: 'system_sample', ...sample });
    await waitFor(() =>
      expect(screen.getByTestId('system-sampled-at').getAttribute('data-sampled-at')).toBe('5000'),
    );
    await emit(ENGINE_EVENT, { type: 'status_changed', llm: 'running', diffusion: 'starting' });
    await waitFor(() => expect(screen.getByTestId('status-llm').dataset.state).toBe('running'));
    expect(screen.getByTestId('status-images').dataset.state).toBe('starting');
  });

  it('shows a daemon chip beside its own while a daemon is attached', async () => {
    await renderReady();
    expect(screen.queryByTestId('status-daemon')).toBeNull();
    await emit(ENGINE_EVENT, { type: 'daemon_changed', daemon: fakeAttachedDaemon() });
    const chip = await screen.findByTestId('status-daemon');
    expect(chip.dataset.state).toBe('running');
    expect(chip.title).toContain('pid 4100');
    expect(screen.getByTestId('status-llm').dataset.state).toBe('stopped');
    await emit(ENGINE_EVENT, { type: 'daemon_changed', daemon: null });
    await waitFor(() => expect(screen.queryByTestId('status-daemon')).toBeNull());
  });

  it('cycles the theme through save_settings and puts it on <html>', async () => {
    await renderReady();
    const toggle = screen.getByTestId('theme-toggle');
    await fireEvent.click(toggle);
    await waitFor(() => expect(document.documentElement.dataset.theme).toBe('light'));
    await waitFor(() => expect((toggle as HTMLButtonElement).disabled).toBe(false));
    await fireEvent.click(toggle);
    await waitFor(() => expect(document.documentElement.dataset.theme).toBe('dark'));
    expect(saved.map((s) => s.theme)).toEqual(['light', 'dark']);
  });

  it('shows start-up warnings until dismissed', async () => {
    warnings = [
      {
        code: 'CORRUPT_STATE',
        message: 'The settings file was damaged; it was kept aside and default settings are in use.',
        suggestion: 'Open Settings to check your choices.',
      },
    ];
    await renderReady();
    const warning = await screen.findByTestId('startup-warning');
    expect(warning.textContent).toContain('default settings are in use');
    expect(warning.textContent).toContain('Open Settings to check your choices.');
    await fireEvent.click(screen.getByRole('button', { name: 'Dismiss' }));
    expect(screen.queryByTestId('startup-warning')).toBeNull();
  });

  it('shows why the theme could not be saved', async () => {
    refuseSave = { code: 'STORAGE_UNAVAILABLE', message: 'Cannot write settings.json.', suggestion: 'Check the disk.' };
    await renderReady();
    await fireEvent.click(screen.getByTestId('theme-toggle'));
    const error = await screen.findByTestId('action-error');
    expect(error.textContent).toContain('Cannot write settings.json.');
    expect(error.textContent).toContain('Check the disk.');
  });

  it('fills the Models tab at start and follows download and model events', async () => {
    await renderReady();
    await waitFor(() => expect(screen.getAllByTestId('installed-row')).toHaveLength(2));
    const row = screen.getByTestId('download-row');
    expect(row.dataset.state).toBe('downloading');

    await emit(ENGINE_EVENT, { type: 'download_changed', ...fakeDownload({ state: 'paused', speed_bps: 0 }) });
    await waitFor(() => expect(screen.getByTestId('download-row').dataset.state).toBe('paused'));

    await emit(ENGINE_EVENT, { type: 'models_changed', models: fakeInstalledModels().slice(0, 1) });
    await waitFor(() => expect(screen.getAllByTestId('installed-row')).toHaveLength(1));
  });
});
