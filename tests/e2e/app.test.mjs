// The real app in a real window: every tab opens, the System tab shows this
// machine's own figures and keeps them live, and settings persist.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  DEADLINE_MS, byTestId, launchApp, screenshot, textOf, visible, waitUntilReady,
} from './driver.mjs';

/** The kernel's own numbers, formatted the way the UI formats them. */
function procFigures() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const threads = cpuinfo.split('\n').filter((line) => line.startsWith('processor')).length;
  const kib = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))[1]);
  return { threads: String(threads), ramTotal: `${((kib * 1024) / 2 ** 30).toFixed(1)} GiB` };
}

const TABS = ['system', 'models', 'llm', 'diffusion', 'monitor'];
let session;

before(async () => {
  session = await launchApp();
  await waitUntilReady(session.driver);
});

after(async () => {
  const { killed } = await session.stop();
  assert.equal(killed, false, 'with close-to-tray off, closing the window ends the app');
});

test('the System tab shows this machine', async () => {
  const { driver } = session;
  const expected = procFigures();
  assert.equal(await textOf(driver, 'cpu-threads'), expected.threads);
  assert.equal(await textOf(driver, 'ram-total'), expected.ramTotal);
  const headline = await textOf(driver, 'recommendation-headline');
  assert.match(headline, /run|memory/i);
  await screenshot(driver, '01-system');
});

test('the System tab is live', async () => {
  const { driver } = session;
  const stamp = await visible(driver, 'system-sampled-at');
  const first = Number(await stamp.getAttribute('data-sampled-at'));
  assert.ok(first > 0, 'a first sample time is shown');
  await driver.wait(
    async () => Number(await stamp.getAttribute('data-sampled-at')) > first,
    DEADLINE_MS,
    'no new system sample reached the window',
  );
});

test('every tab opens and keeps the others mounted', async () => {
  const { driver } = session;
  for (const [index, tab] of TABS.entries()) {
    await (await visible(driver, `tab-${tab}`)).click();
    const panel = await visible(driver, `panel-${tab}`);
    assert.ok(await panel.isDisplayed());
    assert.equal(await (await driver.findElement(byTestId(`tab-${tab}`))).getAttribute('aria-selected'), 'true');
    await screenshot(driver, `${String(index + 2).padStart(2, '0')}-${tab}`);
  }
  // Back to System: its content was kept, not rebuilt empty.
  await (await visible(driver, 'tab-system')).click();
  assert.equal(await textOf(driver, 'cpu-threads'), procFigures().threads);
});

test('the theme switch is saved to the settings file', async () => {
  const { driver, home } = session;
  const html = await driver.findElement({ css: 'html' });
  const settingsFile = join(home, 'config', 'settings.json');
  const toggle = await visible(driver, 'theme-toggle');
  // system -> light -> dark. Each click waits for the save before the next: the
  // toggle is disabled while a save runs, and `system` may already look light.
  for (const wanted of ['light', 'dark']) {
    await toggle.click();
    await driver.wait(
      async () =>
        (await toggle.getAttribute('data-theme-setting')) === wanted &&
        (await toggle.isEnabled()) &&
        (await html.getAttribute('data-theme')) === wanted,
      DEADLINE_MS,
      `the theme toggle never settled on ${wanted}`,
    );
  }
  await driver.wait(() => {
    try {
      return JSON.parse(readFileSync(settingsFile, 'utf8')).settings.theme === 'dark';
    } catch {
      return false;
    }
  }, DEADLINE_MS, 'settings.json never recorded the dark theme');
  await screenshot(driver, '07-system-dark');
});
