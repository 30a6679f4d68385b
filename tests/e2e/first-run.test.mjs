// The first-run wizard from a fresh data folder: it shows this machine and the
// engine's proposal, then installs the smallest curated model (the generated tiny
// model, served under the curated name by the fixture Hub), sets up the real
// llama-server named in Settings, starts it and gets a chat answer on screen.
// Finishing it marks the first run done; no llama-server outlives the app.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { By, until } from 'selenium-webdriver';
import {
  DEADLINE_MS, byTestId, click, launchApp, screenshot, textOf, visible, waitGone, waitUntilReady,
} from './driver.mjs';

const LLAMA_SERVER = process.env.SWITCHYARD_LLAMA_SERVER
  ?? join(homedir(), '.cache/switchyard/tools/llama.cpp-11434.0.0/bin/llama-server');
/** The smallest model of the engine's curated list (crates/engine/src/first_run/curated.rs). */
const CURATED = {
  id: 'qwen2.5-0.5b-instruct',
  repo: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF',
  file: 'qwen2.5-0.5b-instruct-q4_k_m.gguf',
};
/** Download, llama-server tests and start, on a busy machine. */
const SETUP_DEADLINE_MS = 180_000;

let hub;
let session;

async function startHub() {
  const binary = process.env.SWITCHYARD_E2E_FIXTURE_HUB;
  if (!binary) throw new Error('SWITCHYARD_E2E_FIXTURE_HUB is not set: run through `npm run e2e`');
  const child = spawn(binary, [`${CURATED.repo}:${CURATED.file}`], { stdio: ['pipe', 'pipe', 'inherit'] });
  const firstLine = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`fixture-hub exited with ${code}`)));
  });
  return { child, url: firstLine.trim() };
}

/** llama-server processes whose environment names this test's folders. */
function llamaServersOf(home) {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0].endsWith('llama-server')
        && readFileSync(`/proc/${pid}/environ`, 'utf8').includes(home);
    } catch {
      return false;
    }
  });
}

const inWizard = (id) => By.css(`[data-testid="first-run"] [data-testid="${id}"]`);

before(async () => {
  assert.ok(existsSync(LLAMA_SERVER),
    `the real llama-server is missing at ${LLAMA_SERVER}: run scripts/build-tool.sh llama-server or set SWITCHYARD_LLAMA_SERVER`);
  hub = await startHub();
  session = await launchApp({
    firstRun: true,
    settings: { theme: 'light', hub_url: hub.url, llama_server_path: LLAMA_SERVER },
  });
  await waitUntilReady(session.driver);
});

after(async () => {
  await session?.stop();
  hub?.child.kill();
  if (session) assert.deepEqual(llamaServersOf(session.home), [], 'a llama-server outlived the app');
});

test('the wizard goes from nothing to a chat answer, then stays closed', async () => {
  const { driver, home } = session;

  // This machine and the engine's proposal, with the alternatives.
  await visible(driver, 'first-run');
  assert.match(await textOf(driver, 'first-run-hardware'), /RAM/);
  await visible(driver, 'first-run-recommended');
  const choices = await driver.findElements(byTestId('first-run-choice'));
  assert.ok(choices.length >= 3, 'alternatives are listed');
  await screenshot(driver, 'first-run');

  // The smallest curated model: the fixture Hub serves it.
  const choice = await driver.findElement(By.css(`[data-testid="first-run-choice"][data-id="${CURATED.id}"] input`));
  await choice.click();
  await click(driver, 'first-run-start');

  await driver.wait(async () => {
    const errors = await driver.findElements(byTestId('first-run-error'));
    if (errors.length > 0) {
      throw new Error(`the wizard failed: ${await driver.executeScript('return arguments[0].textContent', errors[0])}`);
    }
    return (await driver.findElements(byTestId('first-run-ready'))).length > 0;
  }, SETUP_DEADLINE_MS, 'the wizard never reached the chat');
  assert.match(await textOf(driver, 'first-run-ready'), /http:\/\/127\.0\.0\.1:\d+\/v1/);

  // A chat answer, inside the wizard.
  const input = await driver.wait(until.elementLocated(inWizard('chat-input')), DEADLINE_MS);
  await driver.wait(until.elementIsEnabled(input), DEADLINE_MS);
  await input.sendKeys('Say hello');
  await (await driver.findElement(inWizard('chat-send'))).click();
  const answer = await driver.wait(
    until.elementLocated(By.css('[data-testid="first-run"] [data-testid="chat-message"][data-role="assistant"][data-streaming="false"]')),
    SETUP_DEADLINE_MS, 'the answer never finished');
  const shown = await driver.executeScript('return arguments[0].textContent', answer);
  assert.ok(shown.trim().length > 0, 'the answer is on screen');
  await driver.wait(until.elementLocated(inWizard('chat-speed')), DEADLINE_MS, 'no tokens/s shown');
  await screenshot(driver, 'first-run-chat');

  // Done: the wizard closes, the setting is stored, the model and server stay.
  await click(driver, 'first-run-done');
  await waitGone(driver, 'first-run', 'the wizard did not close');
  const stored = JSON.parse(readFileSync(join(home, 'config', 'settings.json'), 'utf8'));
  assert.equal(stored.settings.first_run_done, true);
  await click(driver, 'tab-llm');
  await driver.wait(async () => (await (await driver.findElement(
    By.css('[data-testid="instance-row"][data-name="default"]'))).getAttribute('data-state')) === 'healthy',
  DEADLINE_MS, 'the wizard\'s server is not in the LLM tab');
});

test('Settings opens the wizard again, and skipping closes it', async () => {
  const { driver } = session;
  await click(driver, 'settings-open');
  await click(driver, 'about-run-setup');
  await visible(driver, 'first-run');
  // The model installed above is marked as such.
  await driver.wait(until.elementLocated(By.css(
    `[data-testid="first-run-choice"][data-id="${CURATED.id}"]`)), DEADLINE_MS);
  await click(driver, 'first-run-skip');
  await waitGone(driver, 'first-run', 'the wizard did not close');
});

test('a problem report is written as a zip', async () => {
  const { driver, home } = session;
  await click(driver, 'settings-open');
  await click(driver, 'about-report');
  const path = await textOf(driver, 'about-report-path');
  assert.ok(path.startsWith(join(home, 'data', 'reports')), path);
  assert.ok(path.endsWith('.zip'));
  // A zip starts with the local file header signature.
  assert.equal(readFileSync(path).subarray(0, 4).toString('hex'), '504b0304');
  await driver.executeScript('arguments[0].scrollIntoView({ block: "end" })', await visible(driver, 'about-report-path'));
  await screenshot(driver, 'about');
});
