// Start-up wiring: listen first (so nothing is missed), then query everything once.
import type { EngineEvent } from '../../bindings/EngineEvent';
import { ipc, untagged } from '../ipc';
import { AppInfoStore } from './app.svelte';
import { BinariesStore } from './binaries.svelte';
import { DaemonStore } from './daemon.svelte';
import { LlamaStore } from './llama.svelte';
import { DiffusionStore } from './diffusion.svelte';
import { MonitorStore } from './monitor.svelte';
import { ModelsStore } from './models.svelte';
import { NoticesStore } from './notices.svelte';
import { RouterStore } from './router.svelte';
import { SettingsStore } from './settings.svelte';
import { StatusStore } from './status.svelte';
import { SystemStore } from './system.svelte';

export interface Stores {
  system: SystemStore;
  status: StatusStore;
  settings: SettingsStore;
  appInfo: AppInfoStore;
  notices: NoticesStore;
  models: ModelsStore;
  binaries: BinariesStore;
  llama: LlamaStore;
  daemon: DaemonStore;
  diffusion: DiffusionStore;
  monitor: MonitorStore;
  router: RouterStore;
}

/** One fresh set of stores: main.ts makes the window's, tests make their own. */
export function createStores(): Stores {
  return {
    system: new SystemStore(),
    status: new StatusStore(),
    settings: new SettingsStore(),
    appInfo: new AppInfoStore(),
    notices: new NoticesStore(),
    models: new ModelsStore(),
    binaries: new BinariesStore(),
    llama: new LlamaStore(),
    daemon: new DaemonStore(),
    diffusion: new DiffusionStore(),
    monitor: new MonitorStore(),
    router: new RouterStore(),
  };
}

/** Routes one engine event to the store that owns its data. */
export function applyEvent(stores: Stores, event: EngineEvent): void {
  stores.monitor.apply(event);
  stores.router.apply(event);
  switch (event.type) {
    case 'system_sample':
      stores.system.applySample(untagged(event));
      break;
    case 'settings_changed':
      stores.settings.set(untagged(event));
      // The user's own llama-server or sd may have changed: ask which is in use now.
      void stores.binaries.load();
      break;
    case 'status_changed':
      stores.status.set(untagged(event));
      break;
    case 'download_changed':
      stores.models.applyDownload(untagged(event));
      break;
    case 'models_changed':
      stores.models.setModels(event.models);
      break;
    case 'binary_log':
      stores.binaries.applyLog(untagged(event));
      break;
    case 'binary_download':
      stores.binaries.applyDownload(untagged(event));
      break;
    case 'llama_state':
      stores.llama.applyState(untagged(event));
      break;
    case 'llama_instances':
      stores.llama.setInstances(event.instances);
      break;
    case 'llama_log':
      stores.llama.applyLog(event.instance, event.lines);
      break;
    case 'llama_chat_delta':
      stores.llama.applyChatDelta(untagged(event));
      break;
    case 'llama_chat_done':
      stores.llama.applyChatDone(event.instance, event.outcome);
      break;
    case 'image_server_changed':
      stores.diffusion.applyServer(event.server);
      break;
    case 'image_job_changed':
      // Progress only: a complete job's images are fetched by the store, once.
      stores.diffusion.applyJob(untagged(event));
      break;
    case 'daemon_changed':
      stores.daemon.set(event.daemon);
      break;
    case 'shutting_down':
      stores.status.shuttingDown = true;
      break;
  }
}

/** Subscribes to engine events and loads every store; returns the unsubscribe. */
export async function connect(stores: Stores): Promise<() => void> {
  let unlisten: () => void = () => {};
  try {
    unlisten = await ipc.onEngineEvent((event) => applyEvent(stores, event));
  } catch (error) {
    // Without events the window still shows the first readings.
    console.error('Switchyard: cannot listen to engine events', error);
  }
  await Promise.all([
    stores.system.load(),
    stores.status.load(),
    stores.settings.load(),
    stores.appInfo.load(),
    stores.notices.loadStartupWarnings(),
    stores.models.load(),
    stores.binaries.load(),
    stores.llama.load(),
    stores.daemon.load(),
    stores.diffusion.load(),
    stores.monitor.load(),
    stores.router.load(),
  ]);
  return unlisten;
}
