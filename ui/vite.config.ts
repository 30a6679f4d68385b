import { fileURLToPath } from 'node:url';
import { defaultClientConditions } from 'vite';
import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const testing = process.env.VITEST !== undefined;

// The window runs in WebKitGTK / WKWebView (Linux, macOS) or WebView2 (Windows).
const target = process.env.TAURI_ENV_PLATFORM === 'windows' ? 'chrome105' : 'safari13';

export default defineConfig({
  root,
  // Keep Vite's and Vitest's caches in the repository's node_modules, not ui/.
  cacheDir: fileURLToPath(new URL('../node_modules/.vite', import.meta.url)),
  plugins: [svelte(), svelteTesting()],
  clearScreen: false,
  envPrefix: ['VITE_', 'TAURI_ENV_*'],
  server: {
    port: 5173,
    strictPort: true,
    watch: { ignored: ['**/src-tauri/**', '**/target/**'] },
  },
  resolve: {
    // Tests render components in jsdom: use Svelte's browser build, not its SSR one.
    conditions: testing ? ['browser', ...defaultClientConditions] : undefined,
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target,
    // Small app: one CSS file keeps the strict CSP story simple.
    cssCodeSplit: false,
    sourcemap: !!process.env.TAURI_ENV_DEBUG,
    minify: process.env.TAURI_ENV_DEBUG ? false : 'esbuild',
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    restoreMocks: true,
  },
});
