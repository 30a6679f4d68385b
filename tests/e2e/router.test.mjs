// The Switchyard endpoint in the window, with real parts: the tiny model installed
// from the fixture Hub, the real llama-server. The LLM tab shows the endpoint's
// address with a client snippet; the Models tab loads the model through its button
// (the endpoint then lists it), and unloads it; the Resource Monitor logs both.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { By, until } from 'selenium-webdriver';
import {
  DEADLINE_MS, click, launchApp, painted, screenshot, textOf, visible, waitUntilReady,
} from './driver.mjs';
import {
  LLAMA_SERVER, TINY_MODEL_ID, freePort, installTinyModel, setUpLlamaServer, startHub,
} from './parts.mjs';

/** The tiny model loads in well under a second; a busy machine gets room. */
const LOAD_DEADLINE_MS = 60_000;

let hub;
let session;
let url;

/** Pids of llama-server processes started by the app whose folders are in `home`. */
function llamaServers(home) {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0].endsWith('llama-server')
        && readFileSync(`/proc/${pid}/environ`, 'utf8').includes(home);
    } catch {
      return false;
    }
  });
}

const routerRow = By.css(`[data-testid="router-row"][data-id="${TINY_MODEL_ID}"]`);

async function rowState(driver) {
  return (await driver.findElement(routerRow)).getAttribute('data-state');
}

/** Clicks a button of the model's row once it is enabled (the row's controls are
 *  disabled while an action of the row is under way, and the state it reached may
 *  show before that action has returned), looking the row up again if it re-rendered. */
async function clickInRow(driver, testid) {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    try {
      const row = await driver.wait(until.elementLocated(routerRow), DEADLINE_MS, 'the model has no endpoint row');
      const control = await row.findElement(By.css(`[data-testid="${testid}"]`));
      await driver.wait(until.elementIsEnabled(control), DEADLINE_MS, `${testid} stayed disabled`);
      await control.click();
      return;
    } catch (error) {
      const retryable = ['StaleElementReferenceError', 'NoSuchElementError', 'ElementClickInterceptedError'];
      if (Date.now() > deadline || !retryable.includes(error.name)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Whether the engine says the model is pinned, and its Pin box agrees. */
async function pinned(driver) {
  const row = await driver.findElement(routerRow);
  const box = await row.findElement(By.css('[data-testid="router-pin"]'));
  const checked = await driver.executeScript('return arguments[0].checked', box);
  const engine = (await row.getAttribute('data-pinned')) === 'true';
  return checked === engine ? engine : null;
}

async function scrollTo(driver, testid) {
  const element = await visible(driver, testid);
  await driver.executeScript('arguments[0].scrollIntoView({ block: "start" })', element);
  await painted(driver);
}

before(async () => {
  assert.ok(existsSync(LLAMA_SERVER),
    `the real llama-server is missing at ${LLAMA_SERVER}: run scripts/build-tool.sh llama-server or set SWITCHYARD_LLAMA_SERVER`);
  hub = await startHub();
  // A port of its own: another app on this machine may serve the default 8434.
  const port = await freePort();
  url = `http://127.0.0.1:${port}/v1`;
  session = await launchApp({
    settings: { theme: 'light', hub_url: hub.url, llama_server_path: LLAMA_SERVER, endpoint_port: port },
  });
  await waitUntilReady(session.driver);
});

after(async () => {
  await session?.stop();
  hub?.child.kill();
  if (session) assert.deepEqual(llamaServers(session.home), [], 'a llama-server outlived the app');
});

test('the LLM tab shows the Switchyard endpoint first, with a client snippet to copy', async () => {
  const { driver } = session;
  await installTinyModel(driver);
  // Leaves the window on the LLM tab, with the llama-server the router starts.
  await setUpLlamaServer(driver, LOAD_DEADLINE_MS);

  await driver.wait(async () => {
    const found = await driver.findElements(By.css('[data-testid="endpoint-url"]'));
    return found.length > 0 && (await textOf(driver, 'endpoint-url')) === url;
  }, DEADLINE_MS, `the LLM tab never showed ${url}`);
  const curl = await textOf(driver, 'endpoint-snippet');
  assert.ok(curl.startsWith(`curl ${url}/chat/completions`), curl);
  assert.ok(curl.includes(`"model":"${TINY_MODEL_ID}"`), 'the snippet names the installed model');
  // The endpoint card comes before everything else of the tab.
  const first = await driver.executeScript(
    `return document.querySelector('[data-testid="panel-llm"] [data-testid$="-card"]')?.dataset.testid`);
  assert.equal(first, 'endpoint-card');

  await click(driver, 'endpoint-snippet-python');
  await driver.wait(async () => (await textOf(driver, 'endpoint-snippet')).includes(`base_url="${url}"`),
    DEADLINE_MS, 'the Python snippet never showed');
  await scrollTo(driver, 'endpoint-card');
  await screenshot(driver, 'router-llm-endpoint');
});

test('the Models tab loads and unloads a model through its buttons, and pins it', async () => {
  const { driver } = session;
  await click(driver, 'tab-models');
  await driver.wait(until.elementLocated(routerRow), DEADLINE_MS, 'the model has no endpoint row');
  assert.equal(await rowState(driver), 'unloaded');

  await clickInRow(driver, 'router-load');
  await driver.wait(async () => (await rowState(driver)) === 'loaded', LOAD_DEADLINE_MS, 'the model never loaded');
  // The engine's figures, and the endpoint itself answers for it.
  const listed = await (await fetch(`${url}/models`)).json();
  assert.ok(listed.data.some((model) => model.id === TINY_MODEL_ID), JSON.stringify(listed));
  // The pin: the engine's answer (and the instance list it announces) keeps it.
  await clickInRow(driver, 'router-pin');
  await driver.wait(async () => (await pinned(driver)) === true, DEADLINE_MS, 'the model never showed pinned');
  await scrollTo(driver, 'router-card');
  await screenshot(driver, 'router-models-loaded');
  await clickInRow(driver, 'router-pin');
  await driver.wait(async () => (await pinned(driver)) === false, DEADLINE_MS, 'the model never showed unpinned');

  await clickInRow(driver, 'router-unload');
  await driver.wait(async () => (await rowState(driver)) === 'unloaded', LOAD_DEADLINE_MS, 'the model never unloaded');
  await driver.wait(async () => llamaServers(session.home).length === 0, DEADLINE_MS, 'its llama-server kept running');

  // The Resource Monitor's log says what the router did, and why.
  await click(driver, 'tab-monitor');
  for (const kind of ['model_loaded', 'model_unloaded']) {
    await driver.wait(until.elementLocated(By.css(`[data-testid="orchestrator-event"][data-kind="${kind}"]`)),
      DEADLINE_MS, `no ${kind} in the event log`);
  }
  const unloaded = await driver.findElement(By.css('[data-testid="orchestrator-event"][data-kind="model_unloaded"]'));
  assert.match(await driver.executeScript('return arguments[0].textContent', unloaded), /unloaded by hand/);
  await scrollTo(driver, 'monitor-log');
  await screenshot(driver, 'router-monitor-log');
});
