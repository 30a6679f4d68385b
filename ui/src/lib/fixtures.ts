// Realistic engine answers for the browser preview and for tests: an 8-core Ryzen
// with AVX2, 32 GiB of RAM and a 12 GiB RTX 4070. Never imported by the app itself.
import type { AppInfo } from '../bindings/AppInfo';
import type { CuratedChoice } from '../bindings/CuratedChoice';
import type { FirstRunProposal } from '../bindings/FirstRunProposal';
import type { BinaryKind } from '../bindings/BinaryKind';
import type { BinaryLog } from '../bindings/BinaryLog';
import type { BinaryStatus } from '../bindings/BinaryStatus';
import type { DiskUsage } from '../bindings/DiskUsage';
import type { DownloadStatus } from '../bindings/DownloadStatus';
import type { FileGuess } from '../bindings/FileGuess';
import type { HubFile } from '../bindings/HubFile';
import type { ImageServerInfo } from '../bindings/ImageServerInfo';
import type { JobSummary } from '../bindings/JobSummary';
import type { JobView } from '../bindings/JobView';
import type { Progress } from '../bindings/Progress';
import type { RequestLimits } from '../bindings/RequestLimits';
import type { InstalledModel } from '../bindings/InstalledModel';
import type { ModelFacts } from '../bindings/ModelFacts';
import type { ModelKind } from '../bindings/ModelKind';
import type { RemoteModel } from '../bindings/RemoteModel';
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
    ram_bandwidth_bytes_per_second: 38_400_000_000,
    gpus: [
      {
        index: 0,
        vendor: 'nvidia',
        name: 'NVIDIA GeForce RTX 4070',
        driver: 'NVIDIA 560.35.03',
        backends: ['cuda', 'vulkan'],
        unified_memory: false,
        memory_bandwidth_bytes_per_second: 504_000_000_000,
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
      max_model_tokens_per_second: 41.8,
      usable_tokens_per_second: 10,
      usable_model_bytes: 9_315_266_068,
      read_rate_bytes_per_second: 403_200_000_000,
      headline:
        'Models up to 8.7 GiB run on the NVIDIA GeForce RTX 4070 (12.0 GiB of VRAM): about 15B parameters at Q4_K_M, or 8.8B at Q8_0.',
      details: [
        'Suggested context: 8,192 tokens.',
        'A model that large generates about 42 tokens/s here.',
        'Larger models still run with some layers in RAM (31.3 GiB total), more slowly.',
        'Estimated for a typical 8B-class model; each model\u2019s own estimate follows when you pick it.',
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
      max_model_tokens_per_second: 1.4,
      usable_tokens_per_second: 10,
      usable_model_bytes: 2_993_000_000,
      read_rate_bytes_per_second: 30_720_000_000,
      headline:
        'Models up to 19.5 GiB run on the CPU: about 34B parameters at Q4_K_M, or 20B at Q8_0.',
      details: [
        'Suggested context: 32,768 tokens.',
        'A model that large generates only about 1 token/s here; for 10 tokens/s or more, pick one up to 2.8 GiB (about 5.0B parameters at Q4_K_M).',
        'No usable GPU was found, so models run on the CPU with AVX2 (16 threads), at the speed of the RAM.',
        'Estimated for a typical 8B-class model; each model\u2019s own estimate follows when you pick it.',
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
    endpoint_port: 8434,
    endpoint_on_network: false,
    model_idle_minutes: 15,
    gpu_shortfall: 'evict',
    image_port: 8081,
    close_to_tray: true,
    autostart: false,
    theme,
    hub_url: DEFAULT_HUB_URL,
    llama_server_path: null,
    sd_path: null,
    binaries_mirror: null,
    restore_llm_servers: true,
    offload_threshold: 75,
    drain_seconds: 30,
    keep_conversations: true,
    kv_cache_budget_mib: 4096,
    usable_tokens_per_second: 10,
    allowed_origins: [],
    first_run_done: true,
  };
}

/** A validated binary, as `binary_status` answers after a setup on this machine. */
export function fakeBinaryStatus(kind: BinaryKind = 'llama_server', overrides: Partial<BinaryStatus> = {}): BinaryStatus {
  const llama = kind === 'llama_server';
  return {
    kind,
    variant: 'vulkan',
    version: llama ? '6.0.0 (build 11429, commit 3f0c7b1)' : 'master-920-2f88688',
    path: llama
      ? '/home/ada/.local/share/switchyard/binaries/llama-server/vulkan/llama-server'
      : '/home/ada/.local/share/switchyard/binaries/sd/vulkan/sd-cli',
    real_tested: true,
    validated_at_ms: 1_763_870_000_000,
    from_cache: true,
    ...overrides,
  };
}

/** One `binary_log` line. */
export function fakeBinaryLog(overrides: Partial<BinaryLog> = {}): BinaryLog {
  return {
    kind: 'llama_server',
    variant: 'vulkan',
    level: 'info',
    step: 'basic_test',
    message: 'answers: version 6.0.0 (build 11429, commit 3f0c7b1)',
    code: null,
    ...overrides,
  };
}

export const fakeStatus: EngineStatus = { llm: 'stopped', diffusion: 'stopped' };

export const fakeAppInfo: AppInfo = {
  version: '0.1.0',
  engine_version: '0.1.0',
  llama_cpp_release: 'ggml-org/llama.cpp b11429',
  sd_release: 'leejet/stable-diffusion.cpp master-920-2f88688',
  license: 'MIT OR Apache-2.0',
  homepage: 'https://github.com/switchyard-app/switchyard',
  data_dir: '/home/you/.local/share/switchyard',
  config_dir: '/home/you/.config/switchyard',
  logs_dir: '/home/you/.local/share/switchyard/logs',
  reports_dir: '/home/you/.local/share/switchyard/reports',
};

const curated = (
  id: string, name: string, parameters: string, sizeMb: number, license: string, fits: boolean,
  tokensPerSecond: number,
): CuratedChoice => ({
  model: {
    id, name, kind: 'llm', parameters, repo: `example/${name}-GGUF`, file: `${id}.gguf`,
    size_bytes: sizeMb * 1_000_000, layers: 28, license, license_url: 'https://www.apache.org/licenses/LICENSE-2.0',
    summary: `${name}, a curated model.`,
  },
  fits,
  tokens_per_second: tokensPerSecond,
  usable: tokensPerSecond >= 10,
  installed: false,
});

/** What `first_run_proposal` answers on a 16 GiB CPU-only machine. */
export const fakeProposal: FirstRunProposal = {
  recommended: 'qwen2.5-3b-instruct',
  choices: [
    curated('qwen2.5-0.5b-instruct', 'Qwen2.5 0.5B Instruct', '0.5B', 491, 'Apache-2.0', true, 58),
    curated('qwen2.5-3b-instruct', 'Qwen2.5 3B Instruct', '3B', 2100, 'Qwen Research License', true, 14),
    curated('qwen2.5-7b-instruct', 'Qwen2.5 7B Instruct', '7B', 4680, 'Apache-2.0', false, 6.4),
  ],
  image_model: null,
  max_model_bytes: 3_000_000_000,
  usable_tokens_per_second: 10,
  speed_warning: null,
  headline: 'Models up to 2.8 GiB run on the CPU: about 4.9B parameters at Q4_K_M, or 2.8B at Q8_0.',
};

// ---- Models -------------------------------------------------------------------

/** A stable fake SHA-256 (64 lowercase hex digits) derived from a text. */
export function fakeSha256(text: string): string {
  let hash = 0x811c9dc5;
  let hex = '';
  for (let round = 0; hex.length < 64; round++) {
    for (const char of `${round}:${text}`) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
    hex += hash.toString(16).padStart(8, '0');
  }
  return hex.slice(0, 64);
}

const LLAMA3_TEMPLATE =
  "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

/** Llama 3.1 8B Instruct at Q4_K_M, as the GGUF reader describes it. */
export function fakeLlamaFacts(): ModelFacts {
  return {
    version: 3,
    architecture: 'llama',
    name: 'Meta Llama 3.1 8B Instruct',
    size_label: '8B',
    file_type: 'Q4_K_M',
    parameter_count: 8_030_261_248,
    tensor_bytes: 4_912_898_304,
    tensor_count: 292,
    quantization: [
      { type_name: 'Q4_K', tensors: 193, bytes: 3_810_525_184 },
      { type_name: 'Q6_K', tensors: 33, bytes: 1_101_004_800 },
      { type_name: 'F32', tensors: 66, bytes: 1_368_320 },
    ],
    block_count: 32,
    context_length: 131_072,
    embedding_length: 4096,
    feed_forward_length: 14_336,
    head_count: 32,
    head_count_kv: 8,
    expert_count: null,
    expert_used_count: null,
    vocab_size: 128_256,
    tokenizer_model: 'gpt2',
    chat_template: LLAMA3_TEMPLATE,
    split: null,
    header_bytes: 7_840_704,
  };
}

/** Stable Diffusion 1.5 at Q8_0: stable-diffusion.cpp files name no architecture. */
export function fakeDiffusionFacts(): ModelFacts {
  return {
    version: 3,
    architecture: null,
    name: null,
    size_label: null,
    file_type: null,
    parameter_count: 1_066_235_307,
    tensor_bytes: 1_757_220_288,
    tensor_count: 1131,
    quantization: [
      { type_name: 'Q8_0', tensors: 412, bytes: 1_157_283_840 },
      { type_name: 'F16', tensors: 264, bytes: 597_426_176 },
      { type_name: 'F32', tensors: 455, bytes: 2_510_272 },
    ],
    block_count: null,
    context_length: null,
    embedding_length: null,
    feed_forward_length: null,
    head_count: null,
    head_count_kv: null,
    expert_count: null,
    expert_used_count: null,
    vocab_size: null,
    tokenizer_model: null,
    chat_template: null,
    split: null,
    header_bytes: 121_344,
  };
}

export const LLAMA_REPO = 'bartowski/Meta-Llama-3.1-8B-Instruct-GGUF';

/** Two installed models: an LLM and an image model. */
export function fakeInstalledModels(): InstalledModel[] {
  const llamaFile = 'Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf';
  const sdFile = 'stable-diffusion-v1-5-pruned-emaonly-Q8_0.gguf';
  return [
    {
      id: 'meta-llama-3-1-8b-instruct-q4-k-m',
      name: 'Meta-Llama-3.1-8B-Instruct-Q4_K_M',
      kind: 'llm',
      files: [
        {
          role: 'weights',
          file_name: llamaFile,
          size_bytes: 4_920_739_232,
          sha256: fakeSha256(llamaFile),
          url: `https://huggingface.co/${LLAMA_REPO}/resolve/main/${llamaFile}`,
        },
      ],
      source: { type: 'hugging_face', repo: LLAMA_REPO, revision: 'main' },
      facts: fakeLlamaFacts(),
      added_at_ms: Date.UTC(2025, 2, 3, 14, 12),
    },
    {
      id: 'stable-diffusion-v1-5-q8-0',
      name: 'stable-diffusion-v1-5-Q8_0',
      kind: 'diffusion',
      files: [
        {
          role: 'weights',
          file_name: sdFile,
          size_bytes: 1_757_341_632,
          sha256: fakeSha256(sdFile),
          url: `https://huggingface.co/second-state/stable-diffusion-v1-5-GGUF/resolve/main/${sdFile}`,
        },
      ],
      source: { type: 'hugging_face', repo: 'second-state/stable-diffusion-v1-5-GGUF', revision: 'main' },
      facts: fakeDiffusionFacts(),
      added_at_ms: Date.UTC(2025, 2, 9, 9, 40),
    },
  ];
}

/** A download about a third of the way through. */
export function fakeDownload(overrides: Partial<DownloadStatus> = {}): DownloadStatus {
  return {
    id: 'qwen2-5-7b-instruct-q4-k-m',
    name: 'Qwen2.5-7B-Instruct-Q4_K_M',
    state: 'downloading',
    bytes: 1_781_530_624,
    total: 4_683_073_536,
    speed_bps: 12_373_196,
    eta_seconds: 235,
    error: null,
    ...overrides,
  };
}

export function fakeDiskUsage(models: InstalledModel[] = fakeInstalledModels(), partial = 1_781_530_624): DiskUsage {
  const models_bytes = models.reduce((sum, model) => sum + model.files.reduce((s, file) => s + file.size_bytes, 0), 0);
  return { models_bytes, partial_bytes: partial, free_bytes: 227_945_316_352 };
}

/** Bits per weight of common llama.cpp quantizations, for plausible file sizes. */
const QUANT_BITS: Array<[string, number]> = [
  ['IQ2_M', 2.93],
  ['Q2_K', 3.35],
  ['Q3_K_M', 4.02],
  ['IQ4_XS', 4.46],
  ['Q4_K_S', 4.67],
  ['Q4_K_M', 4.89],
  ['Q5_K_M', 5.7],
  ['Q6_K', 6.56],
  ['Q8_0', 8.5],
  ['f16', 16],
];

/** "SmolLM2-360M-Instruct" → 360e6, "Qwen2.5-7B" → 7e9: the size a repository's name announces. */
function parametersInName(repo: string): number | null {
  const match = /(?:^|[-_/])(\d+(?:\.\d+)?)([BM])(?=[-_]|$)/i.exec(repo);
  if (!match) return null;
  return Number(match[1]) * (match[2]!.toUpperCase() === 'B' ? 1e9 : 1e6);
}

/**
 * What the engine's guess says about a file (`HubFile.guess`, `guess_model_file`):
 * fixed answers for fixtures, not a second guesser. `quantization` and `kind` are
 * given by the caller, who knows what the fake file is.
 */
export function fakeGuess(pathOrUrl: string, quantization: string | null = null, kind: ModelKind = 'llm'): FileGuess {
  const file = pathOrUrl.split(/[?#]/, 1)[0]!.split('/').filter(Boolean).at(-1) ?? '';
  const gguf = /\.gguf$/i.test(file);
  let name = file;
  try {
    name = decodeURIComponent(file);
  } catch {
    // A malformed escape: the engine keeps the name as written too.
  }
  return {
    name: name.replace(/\.gguf$/i, ''),
    kind,
    role: !gguf ? null : file.startsWith('mmproj') ? 'mmproj' : 'weights',
    quantization,
  };
}

/**
 * A Hub listing like bartowski's, in the engine's order: one GGUF per quantization
 * (smallest first), a projector for vision models, then README, attributes and an
 * imatrix by name.
 */
export function fakeHubFiles(repo: string, parameters = parametersInName(repo) ?? 8_030_261_248): HubFile[] {
  const base = (repo.split('/')[1] ?? repo).replace(/-GGUF$/i, '');
  const file = (path: string, size_bytes: number, lfs: boolean, quant: string | null = null): HubFile => ({
    path,
    size_bytes,
    sha256: lfs ? fakeSha256(`${repo}/${path}`) : null,
    guess: fakeGuess(path, quant),
  });
  const files: HubFile[] = QUANT_BITS.map(([quant, bits]) =>
    file(`${base}-${quant}.gguf`, Math.round((parameters * bits) / 8) + 7_840_704, true, quant.toUpperCase()),
  );
  if (/llava|vl|vision|gemma-3/i.test(repo)) files.push(file(`mmproj-${base}-f16.gguf`, 624_434_336, true, 'F16'));
  files.push(file('.gitattributes', 2_391, false), file(`${base}.imatrix`, 5_229_060, true), file('README.md', 11_842, false));
  return files;
}

/** What inspect_model answers for a file: Llama's facts, the file's quantization and size. */
export function fakeRemoteModel(url: string, sizeBytes: number | null, quant: string | null, context = 8192): RemoteModel {
  const facts = fakeLlamaFacts();
  if (quant) facts.file_type = quant;
  const weights = sizeBytes ?? facts.tensor_bytes;
  // KV cache at f16: 2 (K and V) × layers × context × KV heads × head size × 2 bytes.
  const kv = 2 * 32 * context * 8 * 128 * 2;
  const compute = 266_338_304;
  const overhead = 145_752_064;
  return {
    url,
    facts,
    size_bytes: sizeBytes,
    fetched_bytes: 8_126_464,
    memory: {
      context,
      weights_bytes: weights,
      kv_cache_bytes: kv,
      compute_bytes: compute,
      total_bytes: weights + kv + compute + overhead,
      ram_bytes: weights + kv + compute + overhead,
      vram_bytes: 0,
      backend: 'cpu',
      gpu_layers: 0,
      layers: 32,
      fits: true,
      generation_tokens_per_second: 6.8,
      notes: ['Runs on the CPU.'],
    },
  };
}

/** An instance as the engine lists it; `state` healthy gives it a pid, port and endpoint. */
export function fakeInstance(
  name = 'default',
  state: import('../bindings/InstanceState').InstanceState = 'stopped',
  model_id = 'meta-llama-3-1-8b-instruct-q4-k-m',
): import('../bindings/InstanceStatus').InstanceStatus {
  const running = state === 'healthy' || state === 'loading' || state === 'unhealthy';
  const config: import('../bindings/LlamaConfig').LlamaConfig = {
    context: 4096,
    parallel: 4,
    kv_unified: true,
    cache_type_k: 'f16',
    cache_type_v: 'f16',
    flash_attention: 'auto',
    batch: 2048,
    ubatch: 512,
    gpu_layers: 0,
    cpu_moe_layers: 0,
    swa_full: false,
    context_checkpoints: 3,
    prompt_cache_mib: 0,
    mmproj_bytes: 0,
  };
  return {
    spec: {
      name,
      model_path: `/data/models/${model_id}/model.gguf`,
      model_id,
      mmproj_path: null,
      port: null,
      endpoint_port: 41300,
      config: { ...config, context: 0 },
      auto: { gpu_layers: true, context: true },
      threads: null,
      host: '127.0.0.1',
      api_key: null,
      reasoning: 'auto',
      extra_args: [],
      pinned: false,
      idle_unload_secs: null,
      draft: null,
      role: 'auto',
    },
    state,
    reason: running ? '/health answered 200' : '',
    pid: running ? 4242 : null,
    endpoint: running ? 'http://127.0.0.1:41234' : null,
    api_endpoint: 'http://127.0.0.1:41300',
    running: running
      ? {
          config,
          threads: null,
          host: '127.0.0.1',
          port: 41234,
          reasoning: false,
          role: 'chat',
          args: ['-m', 'model.gguf'],
          binary: '/usr/bin/llama-server',
          estimate: null,
          notes: [],
        }
      : null,
    measured: null,
    started_at_ms: running ? 1_700_000_000_000 : null,
    restarts: 0,
    error: null,
    owned_by: null,
  };
}

/** A daemon with one healthy instance (`chat`) and one instance file it could not use. */
export function fakeAttachedDaemon(
  state: import('../bindings/InstanceState').InstanceState = 'healthy',
): import('../bindings/AttachedDaemon').AttachedDaemon {
  const running = state === 'healthy';
  return {
    status: {
      pid: 4100,
      version: '0.1.0',
      data_dir: '/home/me/.local/share/switchyard',
      instances_dir: '/home/me/.config/switchyard/instances',
      problems: [
        {
          code: 'INVALID_INSTANCE_FILE',
          message: '/home/me/.config/switchyard/instances/big.toml: `llama.prot`: unknown field `prot`',
          suggestion: 'Correct `llama.prot` in /home/me/.config/switchyard/instances/big.toml, then check with `switchyard config validate`.',
        },
      ],
    },
    instances: [
      {
        name: 'chat',
        state,
        pid: running ? 4242 : null,
        port: running ? 41234 : null,
        backend: running ? 'cpu' : null,
        variant: running ? 'cpu' : null,
        model: 'tiny.gguf',
        uptime_s: running ? 65 : null,
        endpoint: running ? 'http://127.0.0.1:41234' : null,
        api_endpoint: 'http://127.0.0.1:41300',
        restarts: 0,
        owner: running ? { kind: 'daemon', pid: 4100 } : null,
      },
    ],
    llm: running ? 'running' : 'stopped',
  };
}

/** The daemon's `chat` as `daemon_instance` describes it. */
export function fakeDaemonInstance(
  state: import('../bindings/InstanceState').InstanceState = 'healthy',
): import('../bindings/DaemonInstance').DaemonInstance {
  const status = fakeInstance('chat', state, 'tiny');
  return {
    status: { ...status, spec: { ...status.spec, model_id: null, model_path: '/srv/models/tiny.gguf' } },
    file: '/home/me/.config/switchyard/instances/chat.toml',
  };
}

/** What preview_instance answers for a small model on a CPU machine. */
export function fakePreview(
  source: import('../bindings/EstimateSource').EstimateSource = 'estimated',
): import('../bindings/InstancePreview').InstancePreview {
  const MiB = 1024 * 1024;
  return {
    estimate: {
      backend: 'cpu',
      config: {
        context: 4096,
        parallel: 4,
        kv_unified: true,
        cache_type_k: 'f16',
        cache_type_v: 'f16',
        flash_attention: 'auto',
        batch: 2048,
        ubatch: 512,
        gpu_layers: 0,
        cpu_moe_layers: 0,
        swa_full: false,
        context_checkpoints: 3,
        prompt_cache_mib: 0,
        mmproj_bytes: 0,
      },
      gpu_layers: 0,
      ram: { weights: 4400 * MiB, output_layer: 400 * MiB, kv_cache: 512 * MiB, compute: 300 * MiB, overhead: 16 * MiB },
      vram: { weights: 0, output_layer: 0, kv_cache: 0, compute: 0, overhead: 0 },
      runtime_bytes: 15 * MiB,
      source,
    },
    notes: ['All layers in RAM (no GPU).'],
    problem: null,
    free_ram_bytes: 16_000 * MiB,
    free_vram_bytes: 0,
    speed: { generation_tokens_per_second: 6.8, source: 'estimated' },
  };
}

/** The bounds the engine reports (RequestLimits::default in Rust). */
export function fakeRequestLimits(): RequestLimits {
  return {
    side_step: 64,
    max_side: 2048,
    max_steps: 150,
    max_count: 16,
    max_cfg_scale: 30,
    max_prompt_chars: 8000,
    default_side: 512,
    default_steps: 20,
    default_cfg_scale: 7,
  };
}

/** A running image server with sd 0.4.7's sampler and scheduler lists. */
export function fakeImageServer(overrides: Partial<ImageServerInfo> = {}): ImageServerInfo {
  return {
    url: 'http://127.0.0.1:8081',
    port: 8081,
    runner: 'server',
    model: 'stable-diffusion-v1-5-q8-0',
    capabilities: {
      samplers: ['euler', 'euler_a', 'heun', 'dpm2', 'dpm++2s_a', 'dpm++2m', 'dpm++2mv2', 'ipndm', 'ipndm_v', 'lcm', 'ddim_trailing', 'tcd'],
      schedulers: ['discrete', 'karras', 'exponential', 'ays', 'gits', 'smoothstep', 'sgm_uniform', 'simple'],
      has_server: true,
    },
    limits: fakeRequestLimits(),
    ...overrides,
  };
}

/** A 2×2 PNG (grey and teal pixels), base64. */
export const TINY_PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGNoaGhgWLCAAUIBACYOBYHj/gbvAAAAAElFTkSuQmCC';

export function fakeProgress(overrides: Partial<Progress> = {}): Progress {
  return {
    stage: 'sampling',
    step: 3,
    total_steps: 20,
    image: 1,
    images: 1,
    percent: 22,
    seconds_per_step: 0.5,
    ...overrides,
  };
}

export function fakeJobSummary(overrides: Partial<JobSummary> = {}): JobSummary {
  return {
    id: 'img_000001_0a1b2c3d',
    status: 'running',
    progress: fakeProgress(),
    eta_seconds: 8.5,
    error: null,
    ...overrides,
  };
}

/** A finished job with `count` images from seed `seed` on. */
export function fakeCompleteJob(id: string, seed = 42, count = 1, size = 512): JobView {
  return {
    id,
    status: 'complete',
    progress: fakeProgress({ stage: 'done', step: 20, percent: 100, image: count, images: count }),
    eta_seconds: null,
    queue_position: null,
    result: {
      images: Array.from({ length: count }, (_, index) => ({ image: TINY_PNG, seed: seed + index, width: size, height: size })),
      time_ms: 1340,
    },
    error: null,
  };
}

/** A model the Switchyard endpoint answers for, as `routed_models` lists it. */
export function fakeRoutedModel(
  overrides: Partial<import('../bindings/RoutedModel').RoutedModel> = {},
): import('../bindings/RoutedModel').RoutedModel {
  const state = overrides.state ?? 'unloaded';
  const loaded = state === 'loaded' || state === 'unloading';
  return {
    id: 'meta-llama-3-1-8b-instruct-q4-k-m',
    name: 'Meta-Llama-3.1-8B-Instruct-Q4_K_M',
    instance: loaded ? 'meta-llama-3-1-8b-instruct-q4-k-m' : null,
    aliases: [],
    state,
    pinned: false,
    idle_unload_secs: null,
    ram_bytes: loaded ? 5_368_709_120 : null,
    vram_bytes: loaded ? 0 : null,
    size_bytes: 4_920_739_232,
    requests: 0,
    last_used_ms: loaded ? 1_700_000_000_000 : null,
    unload_at_ms: loaded ? 1_700_000_900_000 : null,
    ...overrides,
  };
}

/** The installed language models (fakeInstalledModels' LLMs) as the endpoint lists them. */
export function fakeRoutedModels(): import('../bindings/RoutedModel').RoutedModel[] {
  return fakeInstalledModels()
    .filter((model) => model.kind === 'llm')
    .map((model) => fakeRoutedModel({ id: model.id, name: model.name, size_bytes: model.files.reduce((sum, file) => sum + file.size_bytes, 0) }));
}

export const FAKE_ENDPOINT_URL = 'http://127.0.0.1:8434/v1';
