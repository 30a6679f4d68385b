// Browser preview without Tauri: answers commands with fake data and emits a
// system sample every 2 s. Loaded only in dev builds (see main.ts).
// URL switches: ?theme=dark|light, ?gpu=none, ?error=system, ?slow=1, ?warn=1
import { mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import type { EngineEvent } from '../bindings/EngineEvent';
import type { ErrorReport } from '../bindings/ErrorReport';
import type { Settings } from '../bindings/Settings';
import type { SettingsUpdate } from '../bindings/SettingsUpdate';
import { ENGINE_EVENT } from './ipc';
import {
  fakeAppInfo,
  fakeCpuOnlySystemInfo,
  fakeSample,
  fakeSettings,
  fakeStatus,
  fakeSystemInfo,
} from './fixtures';

const SAMPLE_INTERVAL_MS = 2000;

function invalid(field: string, problem: string): ErrorReport {
  return {
    code: 'INVALID_SETTING',
    message: `Invalid ${field}: ${problem}`,
    suggestion: 'Correct the value and save again.',
  };
}

function validate(settings: Settings): ErrorReport | null {
  for (const [field, port] of [
    ['llm_port', settings.llm_port],
    ['image_port', settings.image_port],
  ] as const) {
    if (port < 1024) {
      return invalid(field, `port ${port} is reserved for the system; use one from 1024 to 65535`);
    }
  }
  if (settings.llm_port === settings.image_port) {
    return invalid('image_port', `port ${settings.image_port} is already the LLM port`);
  }
  if (!/^https?:\/\//.test(settings.hub_url)) {
    return invalid('hub_url', `\`${settings.hub_url}\` is not an http(s) address`);
  }
  if (settings.data_dir !== null && !settings.data_dir.startsWith('/')) {
    return invalid('data_dir', `${settings.data_dir} is not a full path`);
  }
  return null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function installMock(): void {
  const params = new URLSearchParams(window.location.search);
  const theme = params.get('theme');
  let settings = fakeSettings(theme === 'dark' || theme === 'light' ? theme : 'system');
  const delayMs = params.get('slow') === '1' ? 2500 : 150;
  const info = params.get('gpu') === 'none' ? fakeCpuOnlySystemInfo() : fakeSystemInfo();
  const hasGpu = info.gpus.length > 0;

  const send = (event: EngineEvent) => void emit(ENGINE_EVENT, event);

  mockIPC(
    async (command, args) => {
      await sleep(delayMs);
      switch (command) {
        case 'system_info':
          if (params.get('error') === 'system') {
            throw {
              code: 'HARDWARE_UNREADABLE',
              message: 'Cannot read the hardware: /proc/meminfo is not readable.',
              suggestion: 'Check that /proc is mounted, then restart Switchyard.',
            } satisfies ErrorReport;
          }
          return structuredClone(info);
        case 'app_info':
          return fakeAppInfo;
        case 'get_settings':
          return settings;
        case 'engine_status':
          return fakeStatus;
        case 'startup_warnings':
          return params.get('warn') === '1'
            ? [
                {
                  code: 'CORRUPT_STATE',
                  message: 'settings.json could not be read (expected value at line 1 column 1); defaults are in use.',
                  suggestion: 'Open Settings and save to write a fresh file.',
                } satisfies ErrorReport,
              ]
            : [];
        case 'save_settings': {
          const next = (args as { settings: Settings }).settings;
          const problem = validate(next);
          if (problem) throw problem;
          const update: SettingsUpdate = {
            settings: next,
            restart_required: next.data_dir !== settings.data_dir,
          };
          settings = next;
          send({ type: 'settings_changed', ...next });
          return update;
        }
        default:
          throw { code: 'INTERNAL', message: `Unknown command ${command}`, suggestion: '' };
      }
    },
    { shouldMockEvents: true },
  );

  let step = 0;
  window.setInterval(() => {
    step += 1;
    const sample = fakeSample(Date.now(), step);
    if (!hasGpu) sample.gpus = [];
    send({ type: 'system_sample', ...sample });
  }, SAMPLE_INTERVAL_MS);

  console.info('Switchyard: browser preview with fake engine data');
}
