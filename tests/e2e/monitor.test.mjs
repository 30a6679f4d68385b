// The Resource Monitor with real parts: the tiny LLM on the real llama-server, the
// real sd-cli with the random SDXS model, and `offload_threshold: 10` so that one
// 64×64 image offloads the LLM. The monitor's charts draw, and its event log shows
// the offload and the reload.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { By, until } from 'selenium-webdriver';
import { DEADLINE_MS, click, launchApp, screenshot, visible, waitUntilReady } from './driver.mjs';

const LLAMA_SERVER = process.env.SWITCHYARD_LLAMA_SERVER
  ?? join(homedir(), '.cache/switchyard/tools/llama.cpp-11434.0.0/bin/llama-server');
const SD_CLI = process.env.SWITCHYARD_SD_CLI
  ?? join(homedir(), '.cache/switchyard/tools/stable-diffusion.cpp-0.4.7/bin/sd-cli');
const REPO = 'switchyard/tiny-llama-GGUF';
const MODEL_ID = 'tiny-llama-f32';
const START_DEADLINE_MS = 60_000;
/** One random-SDXS step at 64×64, then the LLM's stop and start, on a busy machine. */
const OFFLOAD_DEADLINE_MS = 180_000;

let hub;
let session;
let work;

async function startHub() {
  const binary = process.env.SWITCHYARD_E2E_FIXTURE_HUB;
  if (!binary) throw new Error('SWITCHYARD_E2E_FIXTURE_HUB is not set: run through `npm run e2e`');
  const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const firstLine = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`fixture-hub exited with ${code}`)));
  });
  return { child, url: firstLine.trim() };
}

/** A Tauri command through the window's own IPC (the Diffusion tab is built elsewhere). */
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

const logLine = (kind) => By.css(`[data-testid="monitor-log-line"][data-kind="${kind}"]`);

before(async () => {
  assert.ok(existsSync(LLAMA_SERVER), `the real llama-server is missing at ${LLAMA_SERVER}`);
  assert.ok(existsSync(SD_CLI), `the real sd-cli is missing at ${SD_CLI}`);
  work = mkdtempSync(join(tmpdir(), 'switchyard-monitor-'));
  const genModel = join(dirname(process.env.SWITCHYARD_E2E_FIXTURE_HUB ?? ''), 'gen-model');
  assert.ok(existsSync(genModel), `gen-model is missing at ${genModel}: cargo build -p switchyard-testkit --bin gen-model`);
  execFileSync(genModel, ['sdxs', join(work, 'sdxs.gguf')], { stdio: 'inherit' });
  hub = await startHub();
  session = await launchApp({
    settings: { theme: 'light', hub_url: hub.url, llama_server_path: LLAMA_SERVER, offload_threshold: 10 },
  });
  await waitUntilReady(session.driver);
});

after(async () => {
  await session?.stop();
  hub?.child.kill();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('an image offloads the LLM and the Resource Monitor shows the offload and the reload', async () => {
  const { driver } = session;

  // The tiny LLM, installed from the fixture Hub and started in the LLM tab.
  await click(driver, 'tab-models');
  const repo = await visible(driver, 'hub-repo');
  await repo.clear();
  await repo.sendKeys(REPO);
  await click(driver, 'hub-list-files');
  const file = await driver.wait(until.elementLocated(By.css('[data-testid="hub-file"][data-path="tiny-llama-F32.gguf"]')), DEADLINE_MS);
  await driver.wait(until.elementIsVisible(file), DEADLINE_MS);
  await file.click();
  await click(driver, 'model-download');
  await driver.wait(until.elementLocated(By.css(`[data-testid="installed-row"][data-id="${MODEL_ID}"]`)), DEADLINE_MS,
    'the tiny model was never installed');
  await click(driver, 'tab-llm');
  await click(driver, 'binary-validate');
  await driver.wait(async () => (await driver.findElement(By.css('[data-testid="binary-card"][data-kind="llama_server"]'))
    .getAttribute('data-state')) === 'ready', START_DEADLINE_MS, 'llama-server was never set up');
  await visible(driver, 'llm-new-model');
  await click(driver, 'llm-create');
  const row = By.css('[data-testid="instance-row"][data-name="default"]');
  await driver.wait(until.elementLocated(row), DEADLINE_MS, 'the instance never appeared');
  await click(driver, 'llm-start');
  await driver.wait(async () => (await driver.findElement(row).getAttribute('data-state')) === 'healthy',
    START_DEADLINE_MS, 'the server never became healthy');

  // The monitor: charts draw from the samples, the orchestrator is idle.
  await click(driver, 'tab-monitor');
  await visible(driver, 'monitor-chart-ram');
  await visible(driver, 'monitor-chart-cpu');
  await driver.wait(async () => (await driver.findElements(By.css('[data-testid="monitor-chart-ram"] canvas'))).length > 0,
    DEADLINE_MS, 'the RAM chart never drew');
  const status = await visible(driver, 'orchestrator-status');
  assert.equal(await status.getAttribute('data-state'), 'idle');

  // The image server with the real sd-cli, and the engine's prediction for the next image.
  const server = await invoke(driver, 'start_image_server', {
    config: { files: { model: join(work, 'sdxs.gguf') }, sd_binary: SD_CLI, port: 0, options: {} },
  });
  await driver.wait(async () => /pause chat/.test(await (await driver.findElement(By.css('[data-testid="orchestrator-prediction"]'))).getText()),
    DEADLINE_MS, 'the prediction never said the chat would pause');

  // One 64×64 one-step image through the image API, as another program would send it.
  const created = await fetch(`${server.url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'a red square', width: 64, height: 64, steps: 1, count: 1 }),
  });
  assert.equal(created.status, 202, await created.clone().text());

  await driver.wait(until.elementLocated(logLine('offloaded')), OFFLOAD_DEADLINE_MS, 'the log never showed the offload');
  await driver.wait(until.elementLocated(logLine('image_complete')), OFFLOAD_DEADLINE_MS, 'the image never finished');
  await driver.wait(until.elementLocated(logLine('reloaded')), OFFLOAD_DEADLINE_MS, 'the log never showed the reload');
  assert.ok((await driver.findElements(By.css('[data-testid="orchestrator-event"][data-kind="offloaded"]'))).length > 0);
  await driver.wait(async () => (await (await visible(driver, 'orchestrator-status')).getAttribute('data-state')) === 'idle',
    DEADLINE_MS, 'the orchestrator never went back to idle');
  const health = await fetch((await invoke(driver, 'list_instances', {}))[0].endpoint.replace(/\/v1$/, '/health'));
  assert.equal(health.status, 200, 'the LLM is back');
  await screenshot(driver, 'monitor-offload');

  await invoke(driver, 'stop_image_server', {});
  await invoke(driver, 'stop_instance', { name: 'default' });
});
