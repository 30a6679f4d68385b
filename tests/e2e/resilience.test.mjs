// Bad input at start-up loses nothing and is explained; a second launch only
// brings the first window forward.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  DEADLINE_MS, appEnv, appPath, byTestId, click, launchApp, screenshot, textOf, visible, waitGone, waitUntilReady,
} from './driver.mjs';

const DAMAGED = '{"settings": {"theme": "dark", "llm_port": ';
let session;

before(async () => {
  session = await launchApp({
    prepare(home) {
      mkdirSync(join(home, 'config'), { recursive: true });
      writeFileSync(join(home, 'config', 'settings.json'), DAMAGED);
    },
  });
  await waitUntilReady(session.driver);
});

after(async () => {
  await session?.stop();
});

test('a damaged settings file is kept aside and explained', async () => {
  const { driver, home } = session;
  const warning = await textOf(driver, 'startup-warning');
  assert.match(warning, /damaged/i);
  assert.match(warning, /default settings/i);
  const kept = join(home, 'config', 'settings.json.damaged');
  assert.ok(existsSync(kept), 'the damaged file was kept');
  assert.equal(readFileSync(kept, 'utf8'), DAMAGED, 'byte for byte');
  // The defaults in use include "first run not done": the wizard opens over the
  // window; skipping it shows the warning beneath.
  await click(driver, 'first-run-skip');
  await waitGone(driver, 'first-run', 'the wizard did not close');
  await screenshot(driver, '08-startup-warning');
});

test('a second launch hands over to the running app and exits', async () => {
  const second = spawn(appPath(), [], { env: appEnv(session.home), stdio: 'ignore' });
  const code = await Promise.race([
    new Promise((resolve) => second.once('exit', (exitCode) => resolve(exitCode))),
    new Promise((_, reject) => setTimeout(
      () => reject(new Error('the second instance kept running')), DEADLINE_MS)),
  ]).finally(() => second.kill());
  assert.equal(code, 0);
  // The first one is still there and answering.
  assert.ok(await (await visible(session.driver, 'tab-system')).isDisplayed());
});

test('the page cannot evaluate strings as code (CSP)', async () => {
  const outcome = await session.driver.executeScript(`
    try { new Function('return 1')(); return 'allowed'; } catch (error) { return error.name; }
  `);
  assert.equal(outcome, 'EvalError');
});
