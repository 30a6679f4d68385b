// First: later modules may read navigator.language while they load.
import './lib/locale-repair';
import './app.css';
import { mount } from 'svelte';
import App from './App.svelte';
import { createStores } from './lib/stores/engine';

async function start(): Promise<void> {
  // Dev only: without Tauri (a plain browser) or with VITE_MOCK=1, fake the
  // engine. The DEV guard lets production builds drop the mock entirely.
  if (import.meta.env.DEV) {
    if (import.meta.env.VITE_MOCK === '1' || !('__TAURI_INTERNALS__' in window)) {
      const { installMock } = await import('./lib/mock');
      installMock();
    }
  }
  const target = document.getElementById('app');
  if (target) mount(App, { target, props: { stores: createStores() } });
}

void start();
