// The one typed door to the engine. Every command and event the window uses goes
// through here, so the rest of the UI never touches `invoke` or event names.
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type { AddModel } from '../bindings/AddModel';
import type { AppInfo } from '../bindings/AppInfo';
import type { AttachedDaemon } from '../bindings/AttachedDaemon';
import type { DaemonInstance } from '../bindings/DaemonInstance';
import type { DaemonStatus } from '../bindings/DaemonStatus';
import type { AutoFields } from '../bindings/AutoFields';
import type { ChatOutcome } from '../bindings/ChatOutcome';
import type { ChatRequest } from '../bindings/ChatRequest';
import type { ImageServerStatus } from '../bindings/ImageServerStatus';
import type { OrchestratorStatus } from '../bindings/OrchestratorStatus';
import type { InstancePreview } from '../bindings/InstancePreview';
import type { InstanceSpec } from '../bindings/InstanceSpec';
import type { InstanceStatus } from '../bindings/InstanceStatus';
import type { LlamaConfig } from '../bindings/LlamaConfig';
import type { LlamaEstimate } from '../bindings/LlamaEstimate';
import type { LogLine } from '../bindings/LogLine';
import type { BinaryKind } from '../bindings/BinaryKind';
import type { BinaryStatus } from '../bindings/BinaryStatus';
import type { DiskUsage } from '../bindings/DiskUsage';
import type { DownloadStatus } from '../bindings/DownloadStatus';
import type { EngineEvent } from '../bindings/EngineEvent';
import type { EngineStatus } from '../bindings/EngineStatus';
import type { FileGuess } from '../bindings/FileGuess';
import type { FirstRunProposal } from '../bindings/FirstRunProposal';
import type { ErrorReport } from '../bindings/ErrorReport';
import type { HubFile } from '../bindings/HubFile';
import type { ImageRequest } from '../bindings/ImageRequest';
import type { ImageServerInfo } from '../bindings/ImageServerInfo';
import type { JobSummary } from '../bindings/JobSummary';
import type { JobView } from '../bindings/JobView';
import type { SdCapabilities } from '../bindings/SdCapabilities';
import type { InstalledModel } from '../bindings/InstalledModel';
import type { ModelLocation } from '../bindings/ModelLocation';
import type { RemoteModel } from '../bindings/RemoteModel';
import type { RoutedModel } from '../bindings/RoutedModel';
import type { Settings } from '../bindings/Settings';
import type { SettingsUpdate } from '../bindings/SettingsUpdate';
import type { SystemInfo } from '../bindings/SystemInfo';

export const ENGINE_EVENT = 'engine://event';

// Codes are SCREAMING_SNAKE_CASE words from the engine's ErrorCode enum. The shape is
// checked, not a copied list of codes, so a code added in Rust is never lost here.
const ERROR_CODE_SHAPE = /^[A-Z][A-Z0-9_]*$/;

function isErrorReport(value: unknown): value is ErrorReport {
  if (typeof value !== 'object' || value === null) return false;
  const report = value as Record<string, unknown>;
  return (
    typeof report.code === 'string' &&
    ERROR_CODE_SHAPE.test(report.code) &&
    typeof report.message === 'string' &&
    typeof report.suggestion === 'string'
  );
}

/** Whatever a rejected call gave, as an ErrorReport people can read. */
export function toErrorReport(error: unknown): ErrorReport {
  if (isErrorReport(error)) {
    return { code: error.code, message: error.message, suggestion: error.suggestion };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'INTERNAL', message, suggestion: '' };
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (error) {
    throw toErrorReport(error);
  }
}

export const ipc = {
  systemInfo: () => call<SystemInfo>('system_info'),
  appInfo: () => call<AppInfo>('app_info'),
  getSettings: () => call<Settings>('get_settings'),
  saveSettings: (settings: Settings) => call<SettingsUpdate>('save_settings', { settings }),
  engineStatus: () => call<EngineStatus>('engine_status'),
  /** Problems found while starting (e.g. unreadable settings reset to defaults). */
  startupWarnings: () => call<ErrorReport[]>('startup_warnings'),

  // Models. Argument keys are the Rust parameter names (single words, so Tauri's
  // camelCase mapping leaves them as they are).
  listModels: () => call<InstalledModel[]>('list_models'),
  listDownloads: () => call<DownloadStatus[]>('list_downloads'),
  diskUsage: () => call<DiskUsage>('disk_usage'),
  /** The files of a Hugging Face repository at a revision (branch, tag or commit). */
  hubFiles: (repo: string, revision: string) => call<HubFile[]>('hub_files', { repo, revision }),
  /** What a file address's name suggests: the name to list it under, its kind, its quantization. */
  guessModelFile: (address: string) => call<FileGuess>('guess_model_file', { address }),
  /** A model file's metadata from its GGUF header alone (HTTP range requests). */
  inspectModel: (location: ModelLocation) => call<RemoteModel>('inspect_model', { location }),
  /** Starts downloading; resolves to the new model's id. */
  addModel: (add: AddModel) => call<string>('add_model', { add }),
  pauseDownload: (id: string) => call<null>('pause_download', { id }),
  resumeDownload: (id: string) => call<null>('resume_download', { id }),
  /** Stops a download and deletes what it fetched. */
  cancelDownload: (id: string) => call<null>('cancel_download', { id }),
  /** Re-reads an installed model's files; rejects with CHECKSUM_MISMATCH when damaged. */
  verifyModel: (id: string) => call<null>('verify_model', { id }),
  deleteModel: (id: string) => call<null>('delete_model', { id }),

  // Binaries (llama-server, sd). The engine picks the build, the test model and the
  // user's own executable from Settings.
  /** Sets up or re-validates (`force_validation`); resolves when tests are done. */
  ensureBinary: (kind: BinaryKind, force_validation: boolean) =>
    call<BinaryStatus>('ensure_binary', { kind, force_validation }),
  /** The binary in use as last validated; null before its first setup. */
  binaryStatus: (kind: BinaryKind) => call<BinaryStatus | null>('binary_status', { kind }),

  // llama-server instances. A spec names its model by catalog id (`model_id`); the
  // engine fills in the file paths.
  listInstances: () => call<InstanceStatus[]>('list_instances'),
  /** A new instance of an installed model with the engine's defaults. */
  createInstance: (name: string, model_id: string) =>
    call<InstanceStatus>('create_instance', { name, model_id }),
  updateInstance: (spec: InstanceSpec) => call<InstanceStatus>('update_instance', { spec }),
  removeInstance: (name: string) => call<null>('remove_instance', { name }),
  /** Resolves once the server is healthy; rejects with PORT_IN_USE, SERVER_START_FAILED, ... */
  startInstance: (name: string) => call<InstanceStatus>('start_instance', { name }),
  stopInstance: (name: string) => call<InstanceStatus>('stop_instance', { name }),
  restartInstance: (name: string) => call<InstanceStatus>('restart_instance', { name }),
  /** Log lines with `seq >= since`, at most the last `limit`. */
  instanceLogs: (name: string, since: number, limit: number) =>
    call<LogLine[]>('instance_logs', { name, since, limit }),
  /** A streaming test chat: pieces arrive as `llama_chat_delta` events; resolves at the end. */
  chat: (name: string, request: ChatRequest) => call<ChatOutcome>('chat', { name, request }),
  /** The memory an installed model needs under `config` (measured when known). */
  estimateModel: (model_id: string, config: LlamaConfig) =>
    call<LlamaEstimate>('estimate_model', { model_id, config }),
  /** What a start would run with now: automatic fields fitted, estimate, and why it would not fit. */
  previewInstance: (model_id: string, config: LlamaConfig, auto: AutoFields) =>
    call<InstancePreview>('preview_instance', { model_id, config, auto }),

  // Images. The window names an installed model; the engine finds its files and sd.
  /** Starts the image server on the image port setting; resolves when it listens. */
  startImageServer: (model: string) => call<ImageServerInfo>('start_image_server', { model }),
  stopImageServer: () => call<null>('stop_image_server'),
  /** Where the image server listens, or null when it is stopped. */
  imageServer: () => call<ImageServerInfo | null>('image_server'),
  /** Samplers and schedulers the running sd offers. */
  imageCapabilities: () => call<SdCapabilities>('image_capabilities'),
  /** Sets (or, with null, removes) the key clients of the image API must send. */
  setImageApiKey: (key: string | null) => call<void>('set_image_api_key', { key }),
  /** Whether the image API wants a key (the key never comes back). */
  imageApiKeySet: () => call<boolean>('image_api_key_set'),
  /** Queues a generation; resolves to the job's id. Progress comes as `image_job_changed`. */
  generateImage: (request: ImageRequest) => call<string>('generate_image', { request }),
  /** A job with its images (base64 PNG) once complete: events never carry images. */
  imageJob: (id: string) => call<JobView>('image_job', { id }),
  cancelImageJob: (id: string) => call<JobSummary>('cancel_image_job', { id }),
  /** Writes a PNG into the gallery folder; resolves to the file's path. */
  saveImage: (image: string, seed: number) => call<string>('save_image', { image, seed }),

  // The orchestrator and the image server's load (Resource Monitor).
  /** Phase, policy, saved LLM state and the prediction for the next default image. */
  orchestratorStatus: () => call<OrchestratorStatus>('orchestrator_status'),
  clearSavedState: () => call<null>('clear_saved_state'),
  /** Starts the saved LLM servers as they ran, then clears the saved state. */
  restartSavedLlm: () => call<InstanceStatus[]>('restart_saved_llm'),
  /** The running image server with its load (busy, queue, sd pid), or null when stopped. */
  imageServerStatus: () => call<ImageServerStatus | null>('image_server_status'),
  // First run and help.
  /** The curated models with the one proposed for this machine. */
  firstRunProposal: () => call<FirstRunProposal>('first_run_proposal'),
  /** Starts downloading a curated model (nothing new when installed); resolves to its model id. */
  installCuratedModel: (id: string) => call<string>('install_curated_model', { id }),
  /** The instance serving an installed model, created with the engine's defaults when none does. */
  instanceForModel: (model_id: string) => call<InstanceStatus>('instance_for_model', { model_id }),
  /** Marks the first-run wizard done (finished or skipped). */
  finishFirstRun: () => call<SettingsUpdate>('finish_first_run'),
  openLogsFolder: () => call<null>('open_logs_folder'),
  /** Writes the problem report zip, shows it in the file manager; resolves to its path. */
  reportProblem: () => call<string>('report_problem'),

  // The `switchyard daemon` of this data folder, when one runs: its instances are
  // its own (from its instance files); the window drives them through it.
  /** What the daemon runs now, or null without one; later changes come as `daemon_changed`. */
  attachedDaemon: () => call<AttachedDaemon | null>('attached_daemon'),
  /** One daemon instance as the daemon describes it, with its instance file. */
  daemonInstance: (name: string) => call<DaemonInstance>('daemon_instance', { name }),
  /** Resolves once the daemon says it is healthy; rejects with the daemon's own code. */
  daemonUp: (name: string) => call<InstanceStatus>('daemon_up', { name }),
  daemonDown: (name: string) => call<InstanceStatus>('daemon_down', { name }),
  daemonRestart: (name: string) => call<InstanceStatus>('daemon_restart', { name }),
  /** The daemon's log lines with `seq >= since`, at most the last `limit`. */
  daemonLogs: (name: string, since: number, limit: number) =>
    call<LogLine[]>('daemon_logs', { name, since, limit }),
  /** The daemon reads its instance files again. */
  daemonReload: () => call<DaemonStatus>('daemon_reload'),

  // The Switchyard endpoint: one OpenAI-compatible address where a request's
  // `model` picks the model (loaded on request, unloaded when idle or for room).
  /** The endpoint's address for clients (`http://127.0.0.1:8434/v1`), or null when not served here. */
  endpointUrl: () => call<string | null>('endpoint_url'),
  /** Every model the endpoint answers for, with its state (unloaded, loading, ...). */
  routedModels: () => call<RoutedModel[]>('routed_models'),
  /** Loads a model as a request for it would (making room first); resolves once loaded. */
  loadModel: (model: string) => call<RoutedModel>('load_model', { model }),
  /** Unloads a model once its answers under way are done. */
  unloadModel: (model: string) => call<RoutedModel>('unload_model', { model }),
  /** Pins a model (never unloaded by the router) or unpins it. */
  pinModel: (model: string, pinned: boolean) => call<RoutedModel>('pin_model', { model, pinned }),
  /** Sets (or, with null, removes) the key the endpoint wants from clients. */
  setEndpointApiKey: (key: string | null) => call<void>('set_endpoint_api_key', { key }),
  /** Whether the endpoint wants a key. */
  endpointApiKeySet: () => call<boolean>('endpoint_api_key_set'),

  /** Calls `handler` for every engine event until the returned function is called. */
  onEngineEvent: async (handler: (event: EngineEvent) => void): Promise<UnlistenFn> => {
    const unlisten = await listen<EngineEvent>(ENGINE_EVENT, (event) => handler(event.payload));
    // Unlistening is asynchronous underneath; a failure then (window closing) is harmless.
    return () => {
      Promise.resolve()
        .then(unlisten)
        .catch((error: unknown) => console.warn('Switchyard: could not stop listening', error));
    };
  },
};

/** An event's payload without its `type` tag: the plain Settings, EngineStatus, ... */
export function untagged<T extends object>(event: { type: string } & T): T {
  const copy: Record<string, unknown> = { ...event };
  delete copy.type;
  return copy as T;
}
