import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import type { Settings } from '../bindings/Settings';
import { fakeAppInfo, fakeSettings } from '../lib/fixtures';
import { AppInfoStore } from '../lib/stores/app.svelte';
import { SettingsStore } from '../lib/stores/settings.svelte';
import SettingsDialog from './SettingsDialog.svelte';

afterEach(() => {
  cleanup();
  clearMocks();
});

function setup(answer: (settings: Settings) => unknown) {
  const sent: Settings[] = [];
  mockIPC((command, args) => {
    if (command !== 'save_settings') throw `unexpected ${command}`;
    const settings = (args as { settings: Settings }).settings;
    sent.push(settings);
    return answer(settings);
  });
  const settings = new SettingsStore();
  settings.set(fakeSettings());
  const appInfo = new AppInfoStore();
  appInfo.value = fakeAppInfo;
  render(SettingsDialog, { open: true, settings, appInfo });
  return { sent, settings };
}

const input = (label: string) => screen.getByLabelText(label) as HTMLInputElement;

describe('SettingsDialog', () => {
  it('fills the form from the settings and shows About', () => {
    setup(() => null);
    expect(input('Endpoint port').value).toBe('8434');
    expect(input('Image port').value).toBe('8081');
    expect(input('Data folder').value).toBe('');
    expect(input('Model hub address').value).toBe('https://huggingface.co');
    expect(screen.getByTestId('about-version').textContent).toBe('0.1.0');
    expect(screen.getByText(fakeAppInfo.logs_dir)).toBeTruthy();
  });

  it('says what a problem report holds and what it leaves out', () => {
    setup(() => null);
    const contents = (screen.getByTestId('about-report-contents').textContent ?? '').replace(/\s+/g, ' ');
    expect(contents).toContain('the last 2 MiB of each log');
    expect(contents).toContain('API keys, passwords, tokens, prompts and answers are not in it');
  });

  it('shows the ErrorReport inline when the engine refuses', async () => {
    const { sent, settings } = setup(() => {
      throw { code: 'INVALID_SETTING', message: 'Invalid endpoint_port: port 80 is reserved', suggestion: 'Correct the value and save again.' };
    });
    await fireEvent.input(input('Endpoint port'), { target: { value: '80' } });
    await fireEvent.click(screen.getByTestId('settings-save'));

    const error = await screen.findByTestId('settings-error');
    expect(error.textContent).toContain('Invalid endpoint_port: port 80 is reserved');
    expect(error.textContent).toContain('Correct the value and save again.');
    expect(sent[0]?.endpoint_port).toBe(80);
    expect(settings.value?.endpoint_port).toBe(8434); // unchanged: the engine said no
  });

  it('sends an empty data folder as null and notes when a restart is needed', async () => {
    const { sent, settings } = setup((next) => ({ settings: next, restart_required: next.data_dir !== null }));
    await fireEvent.input(input('Data folder'), { target: { value: '  /mnt/models  ' } });
    await fireEvent.click(screen.getByTestId('settings-save'));

    await screen.findByTestId('settings-restart-note');
    expect(sent[0]?.data_dir).toBe('/mnt/models');
    expect(settings.value?.data_dir).toBe('/mnt/models');

    await fireEvent.input(input('Data folder'), { target: { value: '' } });
    await fireEvent.click(screen.getByTestId('settings-save'));
    await waitFor(() => expect(sent).toHaveLength(2));
    expect(sent[1]?.data_dir).toBeNull();
  });

  it('saves the model hub address with the rest, and an empty one as the Hub', async () => {
    const { sent, settings } = setup((next) => ({ settings: next, restart_required: false }));
    await fireEvent.input(input('Model hub address'), { target: { value: ' https://hf-mirror.example.org ' } });
    await fireEvent.click(screen.getByTestId('settings-save'));
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toEqual({ ...fakeSettings(), hub_url: 'https://hf-mirror.example.org' });
    expect(settings.value?.hub_url).toBe('https://hf-mirror.example.org');

    await fireEvent.input(input('Model hub address'), { target: { value: '' } });
    await fireEvent.click(screen.getByTestId('settings-save'));
    await waitFor(() => expect(sent).toHaveLength(2));
    expect(sent[1]?.hub_url).toBe('https://huggingface.co');
  });

  it('saves the usable chat speed with the rest', async () => {
    const { sent } = setup((next) => ({ settings: next, restart_required: false }));
    expect(input('Usable chat speed (tokens/s)').value).toBe('10');
    await fireEvent.input(input('Usable chat speed (tokens/s)'), { target: { value: '20' } });
    await fireEvent.click(screen.getByTestId('settings-save'));
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toEqual({ ...fakeSettings(), usable_tokens_per_second: 20 });
  });

  it('saves whether conversations are kept across a pause, and their disk budget', async () => {
    const { sent } = setup((next) => ({ settings: next, restart_required: false }));
    expect((screen.getByTestId('settings-keep-conversations') as HTMLInputElement).checked).toBe(true);
    expect(input('Disk for saved conversations (MiB)').value).toBe('4096');
    await fireEvent.input(input('Disk for saved conversations (MiB)'), { target: { value: '8192' } });
    await fireEvent.click(screen.getByTestId('settings-save'));
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toEqual({ ...fakeSettings(), kv_cache_budget_mib: 8192 });

    await fireEvent.click(screen.getByTestId('settings-keep-conversations'));
    expect(input('Disk for saved conversations (MiB)').disabled).toBe(true);
    await fireEvent.click(screen.getByTestId('settings-save'));
    await waitFor(() => expect(sent).toHaveLength(2));
    expect(sent[1]).toMatchObject({ keep_conversations: false });
  });

  it('saves the endpoint’s idle time, GPU rule and network choice with the rest', async () => {
    const { sent } = setup((next) => ({ settings: next, restart_required: false }));
    expect(input('Unload idle models after (min)').value).toBe('15');
    expect((screen.getByTestId('settings-gpu-shortfall') as HTMLSelectElement).value).toBe('evict');
    expect((screen.getByTestId('settings-endpoint-on-network') as HTMLInputElement).checked).toBe(false);
    await fireEvent.input(input('Unload idle models after (min)'), { target: { value: '0' } });
    await fireEvent.change(screen.getByTestId('settings-gpu-shortfall'), { target: { value: 'split_with_cpu' } });
    await fireEvent.click(screen.getByTestId('settings-endpoint-on-network'));
    await fireEvent.click(screen.getByTestId('settings-save'));
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toEqual({
      ...fakeSettings(),
      model_idle_minutes: 0,
      gpu_shortfall: 'split_with_cpu',
      endpoint_on_network: true,
    });
  });

  it('sets the endpoint key before the settings that need it, and never shows it', async () => {
    const calls: string[] = [];
    mockIPC((command, args) => {
      calls.push(command === 'set_endpoint_api_key' ? `${command} ${(args as { key: string }).key}` : command);
      if (command === 'endpoint_api_key_set' || command === 'image_api_key_set') return false;
      if (command === 'save_settings') return { settings: (args as { settings: Settings }).settings, restart_required: false };
      return null;
    });
    const settings = new SettingsStore();
    settings.set(fakeSettings());
    const appInfo = new AppInfoStore();
    appInfo.value = fakeAppInfo;
    render(SettingsDialog, { open: true, settings, appInfo });
    await fireEvent.click(screen.getByTestId('settings-endpoint-on-network'));
    await fireEvent.input(input('Endpoint key'), { target: { value: ' s3cret ' } });
    await fireEvent.click(screen.getByTestId('settings-save'));
    await waitFor(() => expect(calls).toContain('save_settings'));
    const order = calls.filter((call) => call.startsWith('set_endpoint_api_key') || call === 'save_settings');
    expect(order).toEqual(['set_endpoint_api_key s3cret', 'save_settings']);
    expect(input('Endpoint key').value).toBe('');
    expect(input('Endpoint key').placeholder).toContain('Set');
  });

  it('saves the binary paths and mirror; empty fields are sent as null', async () => {
    const { sent } = setup((next) => ({ settings: next, restart_required: false }));
    expect(input('Use this llama-server').value).toBe('');
    expect(input('Use this sd').value).toBe('');
    expect(input('Binaries download mirror').value).toBe('');
    await fireEvent.input(input('Use this llama-server'), { target: { value: ' /opt/llama.cpp/bin/llama-server ' } });
    await fireEvent.input(input('Binaries download mirror'), { target: { value: 'https://mirror.example.org' } });
    await fireEvent.click(screen.getByTestId('settings-save'));
    await waitFor(() => expect(sent).toHaveLength(1));
    expect(sent[0]).toEqual({
      ...fakeSettings(),
      llama_server_path: '/opt/llama.cpp/bin/llama-server',
      sd_path: null,
      binaries_mirror: 'https://mirror.example.org',
    });
  });

  it('opens Advanced when a binary setting is set, and shows the engine’s refusal', async () => {
    const sent: Settings[] = [];
    mockIPC((command, args) => {
      if (command !== 'save_settings') throw `unexpected ${command}`;
      sent.push((args as { settings: Settings }).settings);
      throw {
        code: 'INVALID_SETTING',
        message: 'The setting `sd_path` is invalid: `sd-cli` is not a full path',
        suggestion: 'Correct the value and save again.',
      };
    });
    const settings = new SettingsStore();
    settings.set({ ...fakeSettings(), sd_path: '/usr/local/bin/sd-cli' });
    const appInfo = new AppInfoStore();
    appInfo.value = fakeAppInfo;
    render(SettingsDialog, { open: true, settings, appInfo });

    expect((screen.getByTestId('settings-advanced') as HTMLDetailsElement).open).toBe(true);
    expect(input('Use this sd').value).toBe('/usr/local/bin/sd-cli');
    await fireEvent.input(input('Use this sd'), { target: { value: 'sd-cli' } });
    await fireEvent.click(screen.getByTestId('settings-save'));
    const error = await screen.findByTestId('settings-error');
    expect(error.textContent).toContain('`sd_path` is invalid');
    expect(sent[0]?.sd_path).toBe('sd-cli');
  });
});
