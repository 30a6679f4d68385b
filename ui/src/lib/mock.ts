// Browser preview without Tauri: answers commands with fake data and emits a
// system sample every 2 s. Loaded only in dev builds (see main.ts).
// URL switches: ?theme=dark|light, ?gpu=none, ?error=system, ?slow=1, ?warn=1,
// ?models=none (empty library), ?download=failed (the sample download has failed),
// ?verify=fail (verification finds a damaged file), ?fast=1 (added downloads finish in seconds),
// ?binary=none (no binary set up yet), ?binary=fail (every build fails its tests),
// ?daemon=1 (a `switchyard daemon` runs beside the app), ?endpoint=none (the Switchyard endpoint is not served), ?firstrun=1 (the first-run wizard opens; its choice step only: downloads and starts
// need the real engine).
import { mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import type { AddModel } from '../bindings/AddModel';
import type { BinaryKind } from '../bindings/BinaryKind';
import type { BinaryLog } from '../bindings/BinaryLog';
import type { BinaryStatus } from '../bindings/BinaryStatus';
import type { DownloadStatus } from '../bindings/DownloadStatus';
import type { EngineEvent } from '../bindings/EngineEvent';
import type { ErrorReport } from '../bindings/ErrorReport';
import type { FileGuess } from '../bindings/FileGuess';
import type { ImageRequest } from '../bindings/ImageRequest';
import type { ImageServerInfo } from '../bindings/ImageServerInfo';
import type { JobView } from '../bindings/JobView';
import type { InstalledModel } from '../bindings/InstalledModel';
import type { ModelLocation } from '../bindings/ModelLocation';
import type { RoutedModel } from '../bindings/RoutedModel';
import type { ServiceState } from '../bindings/ServiceState';
import type { Settings } from '../bindings/Settings';
import type { SettingsUpdate } from '../bindings/SettingsUpdate';
import { ENGINE_EVENT } from './ipc';
import {
  fakeAppInfo,
  fakeAttachedDaemon,
  fakeDaemonInstance,
  fakeBinaryStatus,
  fakeCpuOnlySystemInfo,
  fakeDiskUsage,
  fakeDownload,
  fakeGuess,
  fakeHubFiles,
  fakeImageServer,
  fakeProgress,
  fakeProposal,
  fakeRoutedModel,
  FAKE_ENDPOINT_URL,
  TINY_PNG,
  fakeInstalledModels,
  fakeRemoteModel,
  fakeSample,
  fakeSettings,
  fakeSha256,
  fakeStatus,
  fakeSystemInfo,
} from './fixtures';
import { REPO_SHAPE, baseName } from './models';

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
    ['endpoint_port', settings.endpoint_port],
    ['image_port', settings.image_port],
  ] as const) {
    if (port < 1024) {
      return invalid(field, `port ${port} is reserved for the system; use one from 1024 to 65535`);
    }
  }
  if (settings.endpoint_port === settings.image_port) {
    return invalid('image_port', `port ${settings.image_port} is already the LLM port`);
  }
  if (!/^https?:\/\//.test(settings.hub_url)) {
    return invalid('hub_url', `\`${settings.hub_url}\` is not an http(s) address`);
  }
  for (const [field, path] of [
    ['data_dir', settings.data_dir],
    ['llama_server_path', settings.llama_server_path],
    ['sd_path', settings.sd_path],
  ] as const) {
    if (path !== null && !path.startsWith('/')) return invalid(field, `\`${path}\` is not a full path`);
  }
  if (settings.binaries_mirror !== null && !/^https?:\/\/[^/?#]+/.test(settings.binaries_mirror)) {
    return invalid('binaries_mirror', `\`${settings.binaries_mirror}\` is not an http(s) address`);
  }
  return null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const MIB = 2 ** 20;
/** Progress events per second, as the engine throttles them. */
const DOWNLOAD_TICK_MS = 250;

interface FakeJob {
  status: DownloadStatus;
  add: AddModel | null;
  /** Bytes per second while running. */
  rate: number;
  verifyingFor: number;
}

function inputError(field: string, problem: string): ErrorReport {
  return { code: 'INVALID_INPUT', message: `Invalid ${field}: ${problem}`, suggestion: 'Correct it and try again.' };
}

function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** What the Hub says about a file, or an error like the engine's. */
function locate(
  location: ModelLocation,
  hubUrl: string,
): { url: string; size: number | null; path: string; guess: FileGuess } {
  if (location.type === 'url') {
    if (!/^https?:\/\//.test(location.url)) throw inputError('url', `\`${location.url}\` is not an http(s) address`);
    return { url: location.url, size: 4_920_739_232, path: baseName(location.url), guess: fakeGuess(location.url) };
  }
  const listed = fakeHubFiles(location.repo).find((file) => file.path === location.path);
  if (!listed) throw inputError('path', `\`${location.path}\` is not in ${location.repo} at ${location.revision}`);
  const url = `${hubUrl}/${location.repo}/resolve/${location.revision}/${location.path}`;
  return { url, size: listed.size_bytes, path: location.path, guess: listed.guess };
}

export function installMock(): void {
  const params = new URLSearchParams(window.location.search);
  const theme = params.get('theme');
  let settings = {
    ...fakeSettings(theme === 'dark' || theme === 'light' ? theme : 'system'),
    first_run_done: params.get('firstrun') !== '1',
  };
  const delayMs = params.get('slow') === '1' ? 2500 : 150;
  const info = params.get('gpu') === 'none' ? fakeCpuOnlySystemInfo() : fakeSystemInfo();
  const hasGpu = info.gpus.length > 0;

  const send = (event: EngineEvent) => void emit(ENGINE_EVENT, event);

  // ---- Models: a library, a download that moves, the Hub and headers. ----
  let models: InstalledModel[] = params.get('models') === 'none' ? [] : fakeInstalledModels();
  const jobs = new Map<string, FakeJob>();
  const sample = fakeDownload(
    params.get('download') === 'failed'
      ? {
          state: 'failed',
          speed_bps: 0,
          eta_seconds: null,
          error: {
            code: 'NETWORK_ERROR',
            message: 'The connection to huggingface.co was reset after 1.7 GiB.',
            suggestion: 'Check the network, then resume: the download continues where it stopped.',
          },
        }
      : {},
  );
  jobs.set(sample.id, { status: sample, add: null, rate: sample.speed_bps, verifyingFor: 0 });
  // ---- Binaries: a setup that logs each step, downloads, and tests. ----
  const binaries = new Map<BinaryKind, BinaryStatus>();
  if (params.get('binary') !== 'none') binaries.set('llama_server', fakeBinaryStatus('llama_server'));
  const logLine = (kind: BinaryKind, line: Omit<BinaryLog, 'kind' | 'code'> & { code?: BinaryLog['code'] }) =>
    send({ type: 'binary_log', kind, code: null, ...line });
  async function fakeSetup(kind: BinaryKind, force: boolean): Promise<BinaryStatus> {
    const custom = kind === 'llama_server' ? settings.llama_server_path : settings.sd_path;
    const known = binaries.get(kind);
    if (known && !force) {
      logLine(kind, { variant: known.variant, level: 'info', step: 'cache', message: `${known.path} passed its tests before; tests skipped` });
      return { ...known, from_cache: true };
    }
    const variant = custom === null ? (hasGpu ? 'vulkan' : 'cpu') : null;
    if (custom === null) {
      if (hasGpu) logLine(kind, { variant: 'cuda', level: 'info', step: 'plan', message: 'not tried: no pinned archive for this system' });
      logLine(kind, { variant: null, level: 'info', step: 'plan', message: `trying in this order: ${hasGpu ? 'vulkan, cpu' : 'cpu'}` });
      const file = kind === 'llama_server' ? 'llama-b11429-bin-ubuntu-vulkan-x64.tar.gz' : 'sd-master-920-2f88688-bin-Linux-Ubuntu-24.04-x86_64-vulkan.zip';
      const total = 41 * MIB;
      for (let bytes = 0; bytes <= total; bytes += 6 * MIB) {
        send({ type: 'binary_download', kind, variant: variant ?? 'cpu', file, bytes, total });
        await sleep(DOWNLOAD_TICK_MS);
      }
      send({ type: 'binary_download', kind, variant: variant ?? 'cpu', file, bytes: total, total });
      logLine(kind, { variant, level: 'info', step: 'verify', message: 'SHA-256 matches the pin' });
      logLine(kind, { variant, level: 'info', step: 'extract', message: `unpacked into binaries/${kind === 'llama_server' ? 'llama-server' : 'sd'}/${variant}` });
    } else {
      logLine(kind, { variant: null, level: 'info', step: 'plan', message: `testing ${custom}` });
    }
    await sleep(400);
    if (params.get('binary') === 'fail') {
      const reason = 'died of signal 4 (SIGILL: illegal instruction: this build needs CPU features this machine lacks)';
      logLine(kind, { variant, level: 'error', step: 'real_test', message: reason, code: 'BINARY_REJECTED' });
      logLine(kind, { variant: null, level: 'error', step: 'choose', message: `every build failed (${variant ?? 'custom'}: ${reason})`, code: 'BINARY_UNAVAILABLE' });
      throw {
        code: 'BINARY_UNAVAILABLE',
        message: `No working ${kind === 'llama_server' ? 'llama-server' : 'sd'} for this machine: every build failed (${variant ?? 'custom'}: ${reason}).`,
        suggestion: 'Point Settings at a build of your own, or try again after a driver update.',
      } satisfies ErrorReport;
    }
    const status = fakeBinaryStatus(kind, {
      variant,
      path: custom ?? fakeBinaryStatus(kind).path.replace('/vulkan/', `/${variant}/`),
      real_tested: models.length > 0,
      validated_at_ms: Date.now(),
      from_cache: false,
    });
    logLine(kind, { variant, level: 'info', step: 'basic_test', message: `answers: version ${status.version}` });
    await sleep(600);
    if (models.length > 0) {
      logLine(kind, { variant, level: 'info', step: 'real_test', message: kind === 'llama_server' ? 'generated a token in 0.4 s' : 'drew a 64×64 image in 1.3 s' });
    } else {
      logLine(kind, { variant, level: 'warn', step: 'real_test', message: 'no model installed yet: only the basic test ran' });
    }
    if (variant) logLine(kind, { variant, level: 'info', step: 'choose', message: `using the ${variant} build, version ${status.version}` });
    binaries.set(kind, status);
    return status;
  }

  const announceModels = () => send({ type: 'models_changed', models: structuredClone(models) });
  const announce = (job: FakeJob) => send({ type: 'download_changed', ...structuredClone(job.status) });
  const partialBytes = () =>
    [...jobs.values()].reduce((sum, job) => sum + (job.status.state === 'complete' ? 0 : job.status.bytes), 0);
  const jobOf = (id: string): FakeJob => {
    const job = jobs.get(id);
    if (!job) throw inputError('id', `no download \`${id}\``);
    return job;
  };

  function finish(job: FakeJob) {
    const status = job.status;
    const add = job.add;
    const files = add?.files ?? [
      {
        location: { type: 'hub', repo: 'bartowski/Qwen2.5-7B-Instruct-GGUF', revision: 'main', path: 'Qwen2.5-7B-Instruct-Q4_K_M.gguf' },
        role: 'weights',
        expected_sha256: null,
      } satisfies AddModel['files'][number],
    ];
    const located = files.map((file) => ({ file, ...locate(file.location, settings.hub_url) }));
    const weights = located[0]!;
    const facts = fakeRemoteModel(weights.url, weights.size, weights.guess.quantization).facts;
    if (/qwen/i.test(status.name)) {
      facts.architecture = 'qwen2';
      facts.name = 'Qwen2.5 7B Instruct';
      facts.parameter_count = 7_615_616_512;
      facts.size_label = '7.6B';
      facts.block_count = 28;
      facts.context_length = 32_768;
      facts.embedding_length = 3584;
      facts.head_count = 28;
      facts.head_count_kv = 4;
      facts.vocab_size = 152_064;
    }
    const source = weights.file.location;
    models = [
      ...models,
      {
        id: status.id,
        name: status.name,
        kind: add?.kind ?? 'llm',
        files: located.map((entry) => ({
          role: entry.file.role,
          file_name: baseName(entry.path),
          size_bytes: entry.size ?? status.total ?? status.bytes,
          sha256: fakeSha256(entry.path),
          url: entry.url,
        })),
        source: source.type === 'hub' ? { type: 'hugging_face', repo: source.repo, revision: source.revision } : { type: 'url' },
        facts: add?.kind === 'diffusion' ? null : facts,
        added_at_ms: Date.now(),
      },
    ];
    status.state = 'complete';
    status.speed_bps = 0;
    status.eta_seconds = 0;
    jobs.delete(status.id);
    announceModels();
    announce(job);
  }

  window.setInterval(() => {
    for (const job of jobs.values()) {
      const status = job.status;
      if (status.state === 'verifying') {
        job.verifyingFor += DOWNLOAD_TICK_MS;
        if (job.verifyingFor >= 1500) finish(job);
        continue;
      }
      if (status.state !== 'downloading') continue;
      const total = status.total ?? 4_683_073_536;
      const speed = Math.round(job.rate * (0.85 + Math.random() * 0.3));
      status.bytes = Math.min(total, status.bytes + Math.round((speed * DOWNLOAD_TICK_MS) / 1000));
      status.speed_bps = speed;
      status.eta_seconds = Math.round((total - status.bytes) / Math.max(1, job.rate));
      if (status.bytes >= total) {
        status.state = 'verifying';
        status.speed_bps = 0;
        status.eta_seconds = 0;
        job.verifyingFor = 0;
      }
      announce(job);
    }
  }, DOWNLOAD_TICK_MS);

  // Images: a server that "samples" for a few seconds and returns a tiny PNG per image.
  let imageServer: ImageServerInfo | null = null;
  // Both services, as the engine announces them (`status_changed`).
  let status = { ...fakeStatus };
  const setDiffusion = (diffusion: ServiceState) => {
    status = { ...status, diffusion };
    send({ type: 'status_changed', ...status });
  };
  let imageApiKeySet = false;
  let endpointApiKeySet = false;
  const imageJobs = new Map<string, JobView>();
  let imageJobNumber = 0;
  const fakeGenerate = (request: ImageRequest): string => {
    imageJobNumber += 1;
    const id = `img_${String(imageJobNumber).padStart(6, '0')}_mock`;
    const seed = request.seed ?? Math.floor(Math.random() * 2 ** 31);
    const steps = request.steps;
    let tick = 0;
    const total = steps * request.count;
    const job: JobView = { id, status: 'running', progress: fakeProgress({ stage: 'loading', step: 0, total_steps: steps, image: 1, images: request.count, percent: 2 }), eta_seconds: null, queue_position: null, result: null, error: null };
    imageJobs.set(id, job);
    const announceJob = () => send({ type: 'image_job_changed', id, status: job.status, progress: job.progress, eta_seconds: job.eta_seconds, error: job.error });
    announceJob();
    const timer = window.setInterval(() => {
      if (job.status !== 'running') return window.clearInterval(timer);
      tick += 1;
      if (tick <= total) {
        const image = Math.ceil(tick / steps);
        const step = tick - (image - 1) * steps;
        job.progress = fakeProgress({ stage: 'sampling', step, total_steps: steps, image, images: request.count, percent: 10 + (80 * tick) / total, seconds_per_step: 0.3 });
        job.eta_seconds = 0.3 * (total - tick);
      } else {
        window.clearInterval(timer);
        job.status = 'complete';
        job.eta_seconds = null;
        job.progress = fakeProgress({ stage: 'done', step: steps, total_steps: steps, image: request.count, images: request.count, percent: 100 });
        job.result = { images: Array.from({ length: request.count }, (_, index) => ({ image: TINY_PNG, seed: seed + index, width: request.width, height: request.height })), time_ms: 300 * total };
      }
      announceJob();
    }, 300);
    return id;
  };

  // ---- The Switchyard endpoint: language models loaded and unloaded on request. ----
  const routed = new Map<string, RoutedModel>();
  const routedModels = (): RoutedModel[] =>
    models
      .filter((model) => model.kind === 'llm')
      .map(
        (model) =>
          routed.get(model.id) ??
          fakeRoutedModel({ id: model.id, name: model.name, size_bytes: model.files.reduce((sum, file) => sum + file.size_bytes, 0) }),
      );
  const routedModel = (id: string): RoutedModel => {
    const found = routedModels().find((model) => model.id === id);
    if (!found) {
      throw { code: 'NOT_FOUND', message: `model ${id} does not exist`, suggestion: 'Add it in the Models tab.' } satisfies ErrorReport;
    }
    return found;
  };
  const setRouted = (model: RoutedModel): RoutedModel => {
    routed.set(model.id, model);
    return structuredClone(model);
  };
  const GIB = 2 ** 30;
  async function loadRouted(id: string): Promise<RoutedModel> {
    const model = routedModel(id);
    if (model.state === 'loaded') return structuredClone(model);
    setRouted({ ...model, state: 'loading', instance: id });
    await sleep(1200);
    const ram = hasGpu ? GIB : model.size_bytes + GIB;
    const vram = hasGpu ? model.size_bytes : 0;
    const loaded = setRouted({ ...model, state: 'loaded', instance: id, ram_bytes: ram, vram_bytes: vram, last_used_ms: Date.now(), unload_at_ms: Date.now() + settings.model_idle_minutes * 60_000 });
    send({ type: 'orchestrator', kind: 'model_loaded', instance: id, reason: 'requested', load_ms: 1200, ram_bytes: ram, vram_bytes: vram });
    return loaded;
  }
  async function unloadRouted(id: string): Promise<RoutedModel> {
    const model = routedModel(id);
    if (model.state !== 'loaded') return structuredClone(model);
    setRouted({ ...model, state: 'unloading' });
    await sleep(400);
    const unloaded = setRouted({ ...model, state: 'unloaded', last_used_ms: model.last_used_ms, unload_at_ms: null });
    send({ type: 'orchestrator', kind: 'model_unloaded', instance: id, reason: 'unloaded by hand', ram_bytes: model.ram_bytes ?? 0, vram_bytes: model.vram_bytes ?? 0 });
    return unloaded;
  }

  let daemon = params.get('daemon') === '1' ? fakeAttachedDaemon() : null;
  const daemonState = (state: 'healthy' | 'stopped') => {
    daemon = fakeAttachedDaemon(state);
    send({ type: 'daemon_changed', daemon });
    return fakeDaemonInstance(state).status;
  };

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
          return status;
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
        case 'list_models':
          return structuredClone(models);
        case 'list_downloads':
          return [...jobs.values()].map((job) => structuredClone(job.status));
        case 'disk_usage':
          return fakeDiskUsage(models, partialBytes());
        case 'hub_files': {
          const { repo, revision } = args as { repo: string; revision: string };
          await sleep(400);
          if (!REPO_SHAPE.test(repo)) throw inputError('repo', `\`${repo}\` is not owner/name`);
          if (/missing|private/i.test(repo)) {
            throw {
              code: 'NETWORK_ERROR',
              message: `${settings.hub_url} answered 404 Not Found for ${repo} at ${revision}.`,
              suggestion: 'Check the repository name and revision; private repositories are not supported yet.',
            } satisfies ErrorReport;
          }
          return fakeHubFiles(repo);
        }
        case 'guess_model_file': {
          const { address } = args as { address: string };
          return fakeGuess(address, null, /diffusion|sd[-_]?v?1|flux/i.test(address) ? 'diffusion' : 'llm');
        }
        case 'inspect_model': {
          const { location } = args as { location: ModelLocation };
          await sleep(700);
          const found = locate(location, settings.hub_url);
          if (found.guess.role === null) {
            throw {
              code: 'INVALID_GGUF',
              message: `${found.path} is not a GGUF file (it does not start with GGUF).`,
              suggestion: 'Pick a file ending in .gguf.',
            } satisfies ErrorReport;
          }
          const context = info.recommendation.suggested_context;
          const remote = fakeRemoteModel(found.url, found.size, found.guess.quantization, context);
          // Name it after the file, without the quantization: "Mistral 7B Instruct v0.3".
          const quant = found.guess.quantization ?? '';
          remote.facts.name = found.guess.name
            .replace(new RegExp(`[-_.]${quant}$`, 'i'), '')
            .replace(/[-_]+/g, ' ');
          return remote;
        }
        case 'add_model': {
          const { add } = args as { add: AddModel };
          const name = add.name.trim();
          if (!name) throw inputError('name', 'a model needs a name');
          const id = slug(name);
          if (models.some((model) => model.id === id) || jobs.has(id)) {
            throw inputError('name', `a model named \`${name}\` is already installed or downloading`);
          }
          const total = add.files.reduce((sum, file) => sum + (locate(file.location, settings.hub_url).size ?? 0), 0);
          const job: FakeJob = {
            status: { id, name, state: 'downloading', bytes: 0, total: total || null, speed_bps: 0, eta_seconds: null, error: null },
            add,
            rate: params.get('fast') === '1' ? Math.max(MIB, total / 8) : 48 * MIB,
            verifyingFor: 0,
          };
          jobs.set(id, job);
          announce(job);
          return id;
        }
        case 'pause_download': {
          const job = jobOf((args as { id: string }).id);
          if (job.status.state === 'downloading') {
            Object.assign(job.status, { state: 'paused', speed_bps: 0, eta_seconds: null });
            announce(job);
          }
          return null;
        }
        case 'resume_download': {
          const job = jobOf((args as { id: string }).id);
          if (job.status.state === 'paused' || job.status.state === 'failed') {
            Object.assign(job.status, { state: 'downloading', error: null });
            announce(job);
          }
          return null;
        }
        case 'cancel_download': {
          const job = jobOf((args as { id: string }).id);
          jobs.delete(job.status.id);
          Object.assign(job.status, { state: 'cancelled', speed_bps: 0, eta_seconds: null });
          announce(job);
          return null;
        }
        case 'verify_model': {
          const { id } = args as { id: string };
          const model = models.find((candidate) => candidate.id === id);
          if (!model) throw inputError('id', `no installed model \`${id}\``);
          await sleep(1400);
          if (params.get('verify') === 'fail') {
            const file = model.files[0]!;
            throw {
              code: 'CHECKSUM_MISMATCH',
              message: `${file.file_name} is damaged: its SHA-256 is ${fakeSha256('damaged').slice(0, 16)}…, expected ${file.sha256.slice(0, 16)}….`,
              suggestion: 'Delete the model and download it again.',
            } satisfies ErrorReport;
          }
          return null;
        }
        case 'delete_model': {
          const { id } = args as { id: string };
          if (!models.some((model) => model.id === id)) throw inputError('id', `no installed model \`${id}\``);
          models = models.filter((model) => model.id !== id);
          announceModels();
          return null;
        }
        case 'binary_status': {
          const { kind } = args as { kind: BinaryKind };
          return structuredClone(binaries.get(kind) ?? null);
        }
        case 'ensure_binary': {
          const { kind, force_validation } = args as { kind: BinaryKind; force_validation: boolean };
          return fakeSetup(kind, force_validation);
        }
        case 'image_server':
          return imageServer;
        case 'start_image_server': {
          const { model } = args as { model: string };
          setDiffusion('starting');
          await sleep(300);
          imageServer = fakeImageServer({ model });
          send({ type: 'image_server_changed', server: imageServer });
          setDiffusion('running');
          return imageServer;
        }
        case 'stop_image_server':
          setDiffusion('stopping');
          await sleep(300);
          imageServer = null;
          send({ type: 'image_server_changed', server: null });
          setDiffusion('stopped');
          return null;
        case 'image_capabilities':
          return imageServer?.capabilities ?? null;
        case 'set_image_api_key':
          imageApiKeySet = Boolean((args as { key: string | null }).key);
          return null;
        case 'image_api_key_set':
          return imageApiKeySet;
        case 'set_endpoint_api_key':
          endpointApiKeySet = Boolean((args as { key: string | null }).key);
          return null;
        case 'endpoint_api_key_set':
          return endpointApiKeySet;
        case 'generate_image':
          return fakeGenerate((args as { request: ImageRequest }).request);
        case 'image_job': {
          const job = imageJobs.get((args as { id: string }).id);
          if (!job) throw { code: 'NOT_FOUND', message: 'Image job does not exist', suggestion: '' } satisfies ErrorReport;
          return structuredClone(job);
        }
        case 'cancel_image_job': {
          const job = imageJobs.get((args as { id: string }).id);
          if (!job) throw { code: 'NOT_FOUND', message: 'Image job does not exist', suggestion: '' } satisfies ErrorReport;
          if (job.status === 'running') {
            job.status = 'cancelled';
            job.progress = { ...job.progress, stage: 'done' };
            send({ type: 'image_job_changed', id: job.id, status: job.status, progress: job.progress, eta_seconds: null, error: null });
          }
          return { id: job.id, status: job.status, progress: job.progress, eta_seconds: null, error: null };
        }
        case 'save_image':
          return `~/.local/share/switchyard/gallery/image_${Date.now()}_seed${(args as { seed: number }).seed}.png`;
        case 'orchestrator_status':
          return {
            phase: 'idle',
            policy: { threshold: settings.offload_threshold / 100, memory_wait_ms: 30_000, reload_attempts: 4, reload_backoff_ms: 1000, poll_ms: 100, max_window_ms: 60_000, chat_turn_ms: 30_000, drain_ms: settings.drain_seconds * 1000 },
            saved: null,
            llm: [],
            next_image: null,
            endpoints: [],
            saved_slots: {
              enabled: settings.keep_conversations,
              folder: '~/.local/share/switchyard/kv-cache',
              bytes: 43_253_760,
              files: 3,
              budget_bytes: settings.kv_cache_budget_mib * 1024 * 1024,
            },
          };
        case 'image_server_status':
          return imageServer && {
            info: imageServer,
            busy: [...imageJobs.values()].some((job) => job.status === 'running'),
            queued: 0,
            active_pid: null,
          };
        case 'clear_saved_state':
          return null;
        case 'restart_saved_llm':
          return [];
        case 'first_run_proposal':
          return fakeProposal;
        case 'finish_first_run': {
          settings = { ...settings, first_run_done: true };
          send({ type: 'settings_changed', ...settings });
          return { settings, restart_required: false } satisfies SettingsUpdate;
        }
        case 'attached_daemon':
          return daemon;
        case 'daemon_instance':
          return fakeDaemonInstance(daemon?.instances[0]?.state ?? 'stopped');
        case 'daemon_up':
        case 'daemon_restart':
          return daemonState('healthy');
        case 'daemon_down':
          return daemonState('stopped');
        case 'daemon_logs':
          return [];
        case 'daemon_reload':
          return daemon?.status;
        case 'endpoint_url':
          return params.get('endpoint') === 'none' ? null : FAKE_ENDPOINT_URL;
        case 'routed_models':
          return routedModels();
        case 'load_model':
          return loadRouted((args as { model: string }).model);
        case 'unload_model':
          return unloadRouted((args as { model: string }).model);
        case 'pin_model': {
          const { model, pinned } = args as { model: string; pinned: boolean };
          return setRouted({ ...routedModel(model), pinned });
        }
        case 'open_logs_folder':
          return null;
        case 'report_problem':
          return `${fakeAppInfo.reports_dir}/switchyard-report-1700000000000.zip`;
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
