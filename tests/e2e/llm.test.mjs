// The LLM tab with real parts: the tiny generated model installed from the fixture
// Hub, the real llama-server named in Settings; an instance is created, started,
// becomes healthy, answers a chat on screen, and is stopped (no server left behind).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { By, until } from 'selenium-webdriver';
import {
  DEADLINE_MS, click, launchApp, screenshot, textOf, visible, waitUntilReady,
} from './driver.mjs';
import { LLAMA_SERVER, startHub } from './parts.mjs';

const REPO = 'switchyard/tiny-llama-GGUF';
const MODEL_ID = 'tiny-llama-f32';
/** The tiny model loads in well under a second; a busy machine gets room. */
const START_DEADLINE_MS = 60_000;

let hub;
let session;

/** Pids of running llama-server processes started from this test's binary. */
function llamaServers() {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0].endsWith('llama-server');
    } catch {
      return false;
    }
  });
}

const row = (name) => By.css(`[data-testid="instance-row"][data-name="${name}"]`);

async function rowState(driver, name) {
  return (await driver.findElement(row(name))).getAttribute('data-state');
}

async function setTheme(driver, wanted) {
  const html = await driver.findElement({ css: 'html' });
  const toggle = await visible(driver, 'theme-toggle');
  await driver.wait(async () => {
    if ((await html.getAttribute('data-theme')) === wanted) return true;
    await toggle.click();
    return false;
  }, DEADLINE_MS, `the theme never turned ${wanted}`);
}

before(async () => {
  assert.ok(existsSync(LLAMA_SERVER),
    `the real llama-server is missing at ${LLAMA_SERVER}: run scripts/build-tool.sh llama-server or set SWITCHYARD_LLAMA_SERVER`);
  hub = await startHub();
  session = await launchApp({
    settings: { theme: 'light', hub_url: hub.url, llama_server_path: LLAMA_SERVER },
  });
  await waitUntilReady(session.driver);
});

after(async () => {
  await session?.stop();
  hub?.child.kill();
  const left = llamaServers().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').includes(session?.home ?? '\u0000none');
    } catch {
      return false;
    }
  });
  assert.deepEqual(left, [], 'a llama-server outlived the app');
});

test('an instance of an installed model starts, answers a chat on screen, and stops', async () => {
  const { driver } = session;

  // Install the tiny model through the Models tab, from the fixture Hub.
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

  // The LLM tab: set up the named llama-server, then create an instance.
  await click(driver, 'tab-llm');
  await click(driver, 'binary-validate');
  await driver.wait(async () => (await driver.findElement(By.css('[data-testid="binary-card"][data-kind="llama_server"]'))
    .getAttribute('data-state')) === 'ready', START_DEADLINE_MS, 'llama-server was never set up');

  await visible(driver, 'llm-new-model');
  await click(driver, 'llm-create');
  await driver.wait(until.elementLocated(row('default')), DEADLINE_MS, 'the instance never appeared');
  assert.equal(await rowState(driver, 'default'), 'stopped');

  // The engine's estimate shows before anything starts.
  await driver.wait(async () => (await driver.findElements(By.css('[data-testid="llm-estimate-ram"]'))).length > 0,
    DEADLINE_MS, 'no estimate before the start');
  assert.equal(await (await driver.findElement(By.css('[data-testid="llm-estimate"]'))).getAttribute('data-source'), 'estimated');
  assert.match(await textOf(driver, 'llm-estimate-context'), /2,048 tokens/);
  assert.equal(await (await visible(driver, 'llm-save')).isEnabled(), false, 'a fresh instance has nothing to save');

  await click(driver, 'llm-start');
  await driver.wait(async () => (await rowState(driver, 'default')) === 'healthy', START_DEADLINE_MS,
    'the server never became healthy');
  await driver.wait(async () => (await (await driver.findElement(By.css('[data-testid="status-llm"]'))).getAttribute('data-state')) === 'running',
    DEADLINE_MS, 'the header never said the LLM runs');
  const endpoint = await textOf(driver, 'llm-endpoint');
  assert.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  const health = await fetch(endpoint.replace(/\/v1$/, '/health'));
  assert.equal(health.status, 200, 'the endpoint shown is the live server');
  assert.match(await textOf(driver, 'llm-pid'), /^\d+$/);
  await driver.wait(async () => (await driver.findElements(By.css('[data-testid="llm-log-line"]'))).length > 5,
    DEADLINE_MS, 'no log lines on screen');
  await screenshot(driver, 'llm-running');

  // A chat: the answer streams in and ends with llama-server's speed.
  const input = await visible(driver, 'chat-input');
  await input.sendKeys('Say hello');
  await click(driver, 'chat-send');
  await driver.wait(until.elementLocated(By.css('[data-testid="chat-message"][data-role="user"]')), DEADLINE_MS);
  const answer = await driver.wait(
    until.elementLocated(By.css('[data-testid="chat-message"][data-role="assistant"][data-streaming="false"]')),
    START_DEADLINE_MS, 'the answer never finished');
  await driver.wait(until.elementLocated(By.css('[data-testid="chat-speed"]')), DEADLINE_MS, 'no tokens/s shown');
  assert.match(await textOf(driver, 'chat-speed'), /tokens\/s/);
  const shown = await driver.executeScript('return arguments[0].textContent', answer);
  assert.ok(shown.trim().length > 0, 'the answer is on screen');
  assert.equal((await driver.findElements(By.css('[data-testid="chat-error"]'))).length, 0);
  await screenshot(driver, 'llm-chat');
  await setTheme(driver, 'dark');
  await screenshot(driver, 'llm-chat-dark');
  await setTheme(driver, 'light');

  // Stop: the row says stopped, the server's own port no longer answers, and the
  // stable endpoint says why with the engine's code.
  const server = await textOf(driver, 'llm-server-url');
  assert.notEqual(server, endpoint, 'clients get the stable endpoint, not the server itself');
  await click(driver, 'llm-stop');
  await driver.wait(async () => (await rowState(driver, 'default')) === 'stopped', START_DEADLINE_MS,
    'the server never stopped');
  await assert.rejects(fetch(server.replace(/\/v1$/, '/health')), 'the port is free after a stop');
  const refused = await fetch(endpoint.replace(/\/v1$/, '/health'));
  assert.equal(refused.status, 503);
  assert.equal((await refused.json()).error.code, 'LLM_STOPPED');
  await visible(driver, 'llm-start');
});
