// The real parts the e2e tests share: the tool binaries, the fixture Hub, the random
// SDXS-512 model installed in an app's data folder, and small window helpers.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync, createReadStream, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, readlinkSync,
  realpathSync, renameSync, statSync, writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { byTestId, visible } from './driver.mjs';

export const LLAMA_SERVER = process.env.SWITCHYARD_LLAMA_SERVER
  ?? join(homedir(), '.cache/switchyard/tools/llama.cpp-11434.0.0/bin/llama-server');
export const SD_CLI = process.env.SWITCHYARD_SD_CLI
  ?? join(homedir(), '.cache/switchyard/tools/stable-diffusion.cpp-0.4.7/bin/sd-cli');
/** The id the random SDXS-512 model has once `installDiffusionModel` put it in place. */
export const DIFFUSION_MODEL_ID = 'sdxs-512-random';
/** Written once by the test kit's gen-model (883 MB, 10–30 s), then reused. */
const MODEL_CACHE = join(homedir(), '.cache/switchyard/e2e/sdxs-512-random.gguf');

/** The fixture Hub (the test kit's `fixture-hub`): { child, url }. */
export async function startHub() {
  const binary = process.env.SWITCHYARD_E2E_FIXTURE_HUB;
  if (!binary) throw new Error('SWITCHYARD_E2E_FIXTURE_HUB is not set: run through `npm run e2e`');
  const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const firstLine = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`fixture-hub exited with ${code}`)));
  });
  return { child, url: firstLine.trim() };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port: chosen } = server.address();
      server.close(() => resolve(chosen));
    });
  });
}

async function sha256(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest('hex');
}

/** The random SDXS-512 model and its SHA-256, generated on first use. */
export async function cachedDiffusionModel() {
  const hashFile = `${MODEL_CACHE}.sha256`;
  if (!existsSync(MODEL_CACHE) || !existsSync(hashFile)) {
    const genModel = process.env.SWITCHYARD_E2E_GEN_MODEL;
    assert.ok(genModel, 'SWITCHYARD_E2E_GEN_MODEL is not set: run through `npm run e2e`');
    mkdirSync(dirname(MODEL_CACHE), { recursive: true });
    const partial = `${MODEL_CACHE}.part`;
    const run = spawnSync(genModel, ['sdxs', partial], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(run.status, 0, `gen-model sdxs failed: ${run.stderr}`);
    writeFileSync(hashFile, await sha256(partial));
    renameSync(partial, MODEL_CACHE);
  }
  return { path: MODEL_CACHE, sha256: readFileSync(hashFile, 'utf8').trim(), size: statSync(MODEL_CACHE).size };
}

/**
 * Installs the model in `home`'s data folder the way a finished download leaves it.
 * A copy (when a hard link is not possible) is 883 MB: remove `diffusionModelDir(home)`
 * after the test.
 */
export function installDiffusionModel(home, model) {
  const file = `${DIFFUSION_MODEL_ID}.gguf`;
  const dir = diffusionModelDir(home);
  mkdirSync(dir, { recursive: true });
  try {
    linkSync(model.path, join(dir, file));
  } catch {
    copyFileSync(model.path, join(dir, file));
  }
  const catalog = {
    models: [{
      id: DIFFUSION_MODEL_ID,
      name: 'SDXS-512 (random weights)',
      kind: 'diffusion',
      files: [{ role: 'weights', file_name: file, size_bytes: model.size, sha256: model.sha256, url: 'file://test-kit/gen-model' }],
      source: { type: 'url' },
      facts: null,
      added_at_ms: Date.now(),
    }],
  };
  writeFileSync(join(dir, '..', 'catalog.json'), JSON.stringify(catalog, null, 2));
}

export function diffusionModelDir(home) {
  return join(home, 'data', 'models', DIFFUSION_MODEL_ID);
}

/**
 * Pids of running sd-cli or sd-server from the tools folder started by the app whose
 * folders are in `home` (they inherit its environment): other people's tests on the
 * same machine run the same cached binaries.
 */
export function sdPids(home) {
  const binaries = ['sd-cli', 'sd-server'].map((name) => realpathSync(join(dirname(SD_CLI), name)));
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return binaries.includes(readlinkSync(`/proc/${pid}/exe`))
          && readFileSync(`/proc/${pid}/environ`, 'utf8').includes(home);
      } catch {
        return false;
      }
    });
}

/** Sets an input's value the way typing does (Svelte listens to `input`). */
export async function setValue(driver, id, value) {
  const element = await visible(driver, id);
  await driver.executeScript(
    `const [element, value] = arguments;
     const prototype = element instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
     Object.getOwnPropertyDescriptor(prototype, 'value').set.call(element, value);
     element.dispatchEvent(new Event('input', { bubbles: true }));
     element.dispatchEvent(new Event('change', { bubbles: true }));`,
    element,
    String(value),
  );
}

/** An element's `data-<name>` attribute, by test id. */
export async function dataOf(driver, id, name) {
  return (await driver.findElement(byTestId(id))).getAttribute(`data-${name}`);
}
