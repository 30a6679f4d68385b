// The Models tab against a stand-in Hugging Face Hub (crates/testkit fixture-hub):
// list a repository, preview a model's metadata from its header, download it,
// and pause and resume a slower one.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { By, until } from 'selenium-webdriver';
import {
  DEADLINE_MS, click, launchApp, screenshot, textOf, visible, waitUntilReady,
} from './driver.mjs';
import { startHub } from './parts.mjs';

const REPO = 'switchyard/tiny-llama-GGUF';
let hub;
let session;

before(async () => {
  hub = await startHub();
  session = await launchApp({ settings: { hub_url: hub.url } });
  await waitUntilReady(session.driver);
  await click(session.driver, 'tab-models');
});

after(async () => {
  await session?.stop();
  hub?.child.kill();
});

async function typeInto(driver, id, text) {
  const input = await visible(driver, id);
  await input.clear();
  await input.sendKeys(text);
}

async function listRepository(driver) {
  await typeInto(driver, 'hub-repo', REPO);
  await click(driver, 'hub-list-files');
}

/** Picks a file of the listed repository as the weights. */
async function chooseHubFile(driver, path) {
  const row = await driver.wait(until.elementLocated(By.css(`[data-testid="hub-file"][data-path="${path}"]`)), DEADLINE_MS);
  await driver.wait(until.elementIsVisible(row), DEADLINE_MS);
  await row.click();
}

async function installedRow(driver, id) {
  return driver.wait(until.elementLocated(By.css(`[data-testid="installed-row"][data-id="${id}"]`)), DEADLINE_MS,
    `${id} never appeared among the installed models`);
}

async function downloadState(driver, state) {
  return driver.wait(until.elementLocated(By.css(`[data-testid="download-row"][data-state="${state}"]`)), DEADLINE_MS,
    `no download reached ${state}`);
}

test('a Hub model is previewed from its header, then downloaded and listed', async () => {
  const { driver, home } = session;
  await listRepository(driver);
  await chooseHubFile(driver, 'tiny-llama-F32.gguf');
  await click(driver, 'model-preview');
  await visible(driver, 'preview-card');
  assert.equal(await textOf(driver, 'preview-architecture'), 'llama');
  assert.equal(await textOf(driver, 'preview-layers'), '2');
  assert.equal(await textOf(driver, 'preview-context'), '2048');
  await screenshot(driver, '10-models-preview');

  await click(driver, 'model-download');
  await installedRow(driver, 'tiny-llama-f32');
  const file = join(home, 'data', 'models', 'tiny-llama-f32', 'tiny-llama-F32.gguf');
  assert.equal(statSync(file).size, 571_520, 'the whole model is on disk');
  await screenshot(driver, '11-models-installed');
});

test('a slow download pauses and resumes', async () => {
  const { driver } = session;
  // The listing from the first test is still there.
  await chooseHubFile(driver, 'tiny-llama-Q8_0.gguf');
  await click(driver, 'model-preview');
  await visible(driver, 'preview-card');
  await click(driver, 'model-download');

  await downloadState(driver, 'downloading');
  await click(driver, 'download-pause');
  await downloadState(driver, 'paused');
  await screenshot(driver, '12-models-paused');
  await click(driver, 'download-resume');
  await installedRow(driver, 'tiny-llama-q8-0');
  await screenshot(driver, '13-models-two-installed');
});
