// Realistic engine answers for the browser preview and for tests: an 8-core Ryzen
// with AVX2, 32 GiB of RAM and a 12 GiB RTX 4070. Never imported by the app itself.
import type { AppInfo } from '../bindings/AppInfo';
import type { EngineStatus } from '../bindings/EngineStatus';
import type { Settings } from '../bindings/Settings';
import type { SystemInfo } from '../bindings/SystemInfo';
import type { SystemSample } from '../bindings/SystemSample';

const GIB = 2 ** 30;
const MIB = 2 ** 20;

export const RAM_TOTAL = 33_625_735_168; // 31.3 GiB as the kernel reports 32 GiB
export const VRAM_TOTAL = 12_282 * MIB;

export function fakeSystemInfo(sampledAtMs = Date.now()): SystemInfo {
  return {
    cpu: {
      brand: 'AMD Ryzen 7 5800X 8-Core Processor',
      vendor: 'AuthenticAMD',
      arch: 'x86_64',
      physical_cores: 8,
      logical_cores: 16,
      features: ['SSE4.2', 'AVX', 'AVX2', 'FMA', 'F16C'],
    },
    os: {
      name: 'Debian GNU/Linux 12 (bookworm)',
      kernel: '6.1.0-28-amd64',
      hostname: 'workstation',
    },
    memory: {
      total_bytes: RAM_TOTAL,
      available_bytes: Math.round(21.4 * GIB),
      used_bytes: RAM_TOTAL - Math.round(21.4 * GIB),
    },
    gpus: [
      {
        index: 0,
        vendor: 'nvidia',
        name: 'NVIDIA GeForce RTX 4070',
        driver: 'NVIDIA 560.35.03',
        backends: ['cuda', 'vulkan'],
        unified_memory: false,
        memory: {
          index: 0,
          total_bytes: VRAM_TOTAL,
          used_bytes: 1_043 * MIB,
          free_bytes: VRAM_TOTAL - 1_043 * MIB,
          utilization_percent: 3,
        },
      },
    ],
    recommendation: {
      runs_on: 'gpu',
      max_model_bytes: 9_315_266_068,
      suggested_context: 8192,
      headline:
        'Models up to 8.7 GiB run on the NVIDIA GeForce RTX 4070 (12.0 GiB of VRAM): about 15B parameters at Q4_K_M, or 8.8B at Q8_0.',
      details: [
        'Suggested context: 8,192 tokens.',
        'Larger models still run with some layers in RAM (31.3 GiB total), more slowly.',
        'A first estimate from memory size; each model\u2019s own estimate follows when you pick it.',
      ],
    },
    sampled_at_ms: sampledAtMs,
  };
}

/** The same machine without a GPU, as the engine would describe it. */
export function fakeCpuOnlySystemInfo(sampledAtMs = Date.now()): SystemInfo {
  const info = fakeSystemInfo(sampledAtMs);
  return {
    ...info,
    gpus: [],
    recommendation: {
      runs_on: 'cpu',
      max_model_bytes: 20_899_535_257,
      suggested_context: 32768,
      headline:
        'Models up to 19.5 GiB run on the CPU: about 34B parameters at Q4_K_M, or 20B at Q8_0.',
      details: [
        'Suggested context: 32,768 tokens.',
        'No usable GPU was found, so models run on the CPU with AVX2 (16 threads): expect a few tokens per second.',
        'A first estimate from memory size; each model\u2019s own estimate follows when you pick it.',
      ],
    },
  };
}

/** A plausible next reading: `step` moves the numbers a little. */
export function fakeSample(sampledAtMs: number, step: number): SystemSample {
  const wave = Math.sin(step / 4);
  const available = Math.round((21.4 + 1.2 * wave) * GIB);
  const vramUsed = Math.round((1_043 + 600 * (1 + Math.sin(step / 6))) * MIB);
  return {
    sampled_at_ms: sampledAtMs,
    cpu_usage_percent: Math.round((18 + 14 * (1 + Math.sin(step / 3))) * 10) / 10,
    memory: { total_bytes: RAM_TOTAL, available_bytes: available, used_bytes: RAM_TOTAL - available },
    gpus: [
      {
        index: 0,
        total_bytes: VRAM_TOTAL,
        used_bytes: vramUsed,
        free_bytes: VRAM_TOTAL - vramUsed,
        utilization_percent: Math.round(4 + 10 * (1 + wave)),
      },
    ],
  };
}

/** The engine's default model hub (a mirror serving the same paths also works). */
export const DEFAULT_HUB_URL = 'https://huggingface.co';

export function fakeSettings(theme: Settings['theme'] = 'system'): Settings {
  return {
    data_dir: null,
    llm_port: 8080,
    image_port: 8081,
    close_to_tray: true,
    autostart: false,
    theme,
    hub_url: DEFAULT_HUB_URL,
  };
}

export const fakeStatus: EngineStatus = { llm: 'stopped', diffusion: 'stopped' };

export const fakeAppInfo: AppInfo = {
  version: '0.1.0',
  data_dir: '/home/you/.local/share/switchyard',
  config_dir: '/home/you/.config/switchyard',
  logs_dir: '/home/you/.local/share/switchyard/logs',
};
