// The Resource Monitor with real parts: the tiny LLM on the real llama-server, the
// real sd with the random SDXS model (both started from their own tabs), and
// `offload_threshold: 0`, so that one 64×64 image offloads the LLM on any machine (the
// two need about 1.4 GB, 6 % of this 23 GB machine: no fixed positive share is
// crossed everywhere). The monitor's charts draw their lines, both servers show side
// by side, the orchestrator predicts the pause, and its event log shows the offload
// and the reload.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { By, until } from 'selenium-webdriver';
import {
  DEADLINE_MS, byTestId, click, launchApp, painted, screenshot, textOf, visible, waitUntilReady,
} from './driver.mjs';
import {
  LLAMA_SERVER, SD_CLI, cachedDiffusionModel, dataOf, diffusionModelDir, freePort, installDiffusionModel,
  installTinyModel, sdPids, setUpLlamaServer, startHub,
} from './parts.mjs';

const START_DEADLINE_MS = 60_000;
/** sd's real test and a first image load the 883 MB model; then the LLM's stop and start. */
const SD_DEADLINE_MS = 180_000;
/** The charts' first line colour (TimeChart's COLOURS[0]). */
const FIRST_LINE_RGB = [0x4f, 0x7c, 0xff];

let hub;
let session;
let imagePort;

/** A Tauri command through the window's own IPC. */
async function invoke(driver, command, args) {
  const result = await driver.executeAsyncScript(
    `const done = arguments[arguments.length - 1];
     window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1])
       .then((value) => done({ ok: value }), (error) => done({ error }));`,
    command,
    args,
  );
  if (result.error) throw new Error(`${command}: ${JSON.stringify(result.error)}`);
  return result.ok;
}

/** How many pixels of a chart's canvases are painted in `rgb` (its drawn line). */
async function linePixels(driver, chartId, rgb) {
  return driver.executeScript(
    `const [chart, [r, g, b]] = arguments;
     let count = 0;
     for (const canvas of document.querySelectorAll('[data-testid="' + chart + '"] canvas')) {
       if (canvas.width === 0 || canvas.height === 0) continue;
       const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
       for (let i = 0; i < data.length; i += 4) {
         if (data[i + 3] > 200 && Math.abs(data[i] - r) < 24 && Math.abs(data[i + 1] - g) < 24 && Math.abs(data[i + 2] - b) < 24) count += 1;
       }
     }
     return count;`,
    chartId,
    rgb,
  );
}

const logLine = (kind) => By.css(`[data-testid="monitor-log-line"][data-kind="${kind}"]`);
const inDiffusionCard = (id) => By.css(`[data-testid="binary-card"][data-kind="diffusion"] [data-testid="${id}"]`);

before(async () => {
  assert.ok(existsSync(LLAMA_SERVER), `the real llama-server is missing at ${LLAMA_SERVER}`);
  assert.ok(existsSync(SD_CLI), `the real sd-cli is missing at ${SD_CLI}`);
  const model = await cachedDiffusionModel();
  hub = await startHub();
  imagePort = await freePort();
  session = await launchApp({
    settings: {
      theme: 'light', hub_url: hub.url, llama_server_path: LLAMA_SERVER, sd_path: SD_CLI, image_port: imagePort,
      offload_threshold: 0,
    },
    prepare: (home) => installDiffusionModel(home, model),
  });
  await waitUntilReady(session.driver);
});

after(async () => {
  await session?.stop();
  hub?.child.kill();
  // A copy (when a hard link was not possible) is 883 MB: never leave it in /tmp.
  if (session) rmSync(diffusionModelDir(session.home), { recursive: true, force: true });
});

test('an image offloads the LLM and the Resource Monitor shows the offload and the reload', async () => {
  const { driver } = session;

  // The tiny LLM, installed from the fixture Hub and started in the LLM tab.
  await installTinyModel(driver);
  await setUpLlamaServer(driver, START_DEADLINE_MS);
  await visible(driver, 'llm-new-model');
  await click(driver, 'llm-create');
  const row = By.css('[data-testid="instance-row"][data-name="default"]');
  await driver.wait(until.elementLocated(row), DEADLINE_MS, 'the instance never appeared');
  await click(driver, 'llm-start');
  await driver.wait(async () => (await driver.findElement(row).getAttribute('data-state')) === 'healthy',
    START_DEADLINE_MS, 'the server never became healthy');

  // The image server with the real sd and the installed SDXS model, from the Diffusion tab.
  await click(driver, 'tab-diffusion');
  const validate = await driver.wait(until.elementLocated(inDiffusionCard('binary-validate')), DEADLINE_MS);
  await driver.wait(until.elementIsEnabled(validate), DEADLINE_MS);
  await validate.click();
  await driver.wait(async () => (await driver.findElement(By.css('[data-testid="binary-card"][data-kind="diffusion"]'))
    .getAttribute('data-state')) === 'ready', SD_DEADLINE_MS, 'sd never became ready');
  await click(driver, 'diffusion-start');
  await driver.wait(async () => (await dataOf(driver, 'diffusion-server', 'state')) === 'running',
    SD_DEADLINE_MS, 'the image server never ran');

  // The monitor: both servers side by side, the charts draw their lines.
  await click(driver, 'tab-monitor');
  await visible(driver, 'monitor-chart-ram');
  await visible(driver, 'monitor-chart-cpu');
  await driver.wait(async () => (await linePixels(driver, 'monitor-chart-ram', FIRST_LINE_RGB)) > 50,
    DEADLINE_MS, 'the RAM chart never drew its line');
  await driver.wait(async () => (await linePixels(driver, 'monitor-chart-cpu', FIRST_LINE_RGB)) > 50,
    DEADLINE_MS, 'the CPU chart never drew its line');
  assert.equal((await driver.findElements(byTestId('chart-failure'))).length, 0, 'no chart failed');
  await driver.wait(async () => (await dataOf(driver, 'monitor-llm-row', 'state')) === 'healthy', DEADLINE_MS);
  // The tab reads the status again on the image server's event: wait for it.
  await driver.wait(async () => (await textOf(driver, 'monitor-image-state')) === 'idle', DEADLINE_MS,
    'the monitor never showed the image server idle');
  assert.equal(await dataOf(driver, 'orchestrator-status', 'state'), 'idle');
  let prediction = '';
  await driver.wait(async () => /pause chat/.test(prediction = await textOf(driver, 'orchestrator-prediction')),
    DEADLINE_MS, () => `the prediction never said the chat would pause: "${prediction}"`);

  // A conversation under way, as a program would hold it: its cache is saved before
  // the offload and read back before the reload ends.
  const [running] = await invoke(driver, 'list_instances', {});
  const chat = await fetch(new URL('/v1/chat/completions', running.api_endpoint), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Describe a switch yard. '.repeat(20) }], max_tokens: 4 }),
  });
  assert.equal(chat.status, 200, await chat.clone().text());

  // One 64×64 one-step image through the image API, as another program would send it.
  const created = await fetch(`http://127.0.0.1:${imagePort}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'a red square', width: 64, height: 64, steps: 1, count: 1 }),
  });
  assert.equal(created.status, 202, await created.clone().text());

  await driver.wait(until.elementLocated(logLine('offloaded')), SD_DEADLINE_MS, 'the log never showed the offload');
  await driver.wait(until.elementLocated(logLine('image_complete')), SD_DEADLINE_MS, 'the image never finished');
  await driver.wait(until.elementLocated(logLine('reloaded')), SD_DEADLINE_MS, 'the log never showed the reload');
  const saved = await driver.findElement(logLine('llm_slots_saved')).getText();
  assert.match(saved, /saved 1 conversation\(s\) \(\d+ tokens/, saved);
  const restored = await driver.findElement(logLine('llm_slots_restored')).getText();
  assert.match(restored, /restored 1 conversation\(s\)/, restored);
  assert.ok((await driver.findElements(By.css('[data-testid="orchestrator-event"][data-kind="offloaded"]'))).length > 0);
  await driver.wait(async () => (await dataOf(driver, 'orchestrator-status', 'state')) === 'idle',
    DEADLINE_MS, 'the orchestrator never went back to idle');
  const [instance] = await invoke(driver, 'list_instances', {});
  const health = await fetch(new URL('/health', instance.endpoint));
  assert.equal(health.status, 200, 'the LLM is back');
  await driver.wait(async () => (await dataOf(driver, 'monitor-llm-row', 'state')) === 'healthy', DEADLINE_MS);

  // The debug panel tells the saved conversations' disk use.
  await driver.executeScript('document.querySelector(\'[data-testid="monitor-debug"]\').open = true');
  let disk = '';
  await driver.wait(async () => /in 1 file\(s\) of\s+4\.0 GiB/.test(disk = await textOf(driver, 'monitor-debug-saved-slots')),
    DEADLINE_MS, () => `the debug panel never showed the saved conversation: "${disk}"`);

  await driver.executeScript('window.scrollTo(0, 0)');
  await painted(driver);
  await screenshot(driver, 'monitor');
});

test('stopping both servers from their tabs leaves no server behind', async () => {
  const { driver } = session;
  await click(driver, 'tab-diffusion');
  await click(driver, 'diffusion-stop');
  await driver.wait(async () => (await dataOf(driver, 'diffusion-server', 'state')) === 'stopped',
    DEADLINE_MS, 'the image server never stopped');
  await driver.wait(async () => sdPids(session.home).length === 0, DEADLINE_MS,
    () => `sd processes left: ${sdPids(session.home)}`);
  await invoke(driver, 'stop_instance', { name: 'default' });
  await click(driver, 'tab-monitor');
  await driver.wait(async () => (await dataOf(driver, 'monitor-llm-row', 'state')) === 'stopped', DEADLINE_MS);
});
