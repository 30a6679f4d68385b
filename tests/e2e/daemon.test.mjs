// The window attached to a running `switchyard daemon` (the real command line, the
// real llama-server, a generated tiny model): the daemon's group shows its instance
// healthy and the instance file it could not use; Stop and Start in the window go through the daemon (its own `ps` agrees);
// the app's own instance of the same name, which ran when the app last closed, is
// left to the daemon at launch and shows it as owner with Start disabled.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { By } from 'selenium-webdriver';
import {
  DEADLINE_MS, appEnv, click, launchApp, screenshot, textOf, visible, waitUntilReady,
} from './driver.mjs';
import { LLAMA_SERVER } from './parts.mjs';

/** The tiny model loads in well under a second; a busy machine gets room. */
const START_DEADLINE_MS = 60_000;
const CLI = process.env.SWITCHYARD_E2E_CLI;
const NAME = 'tiny';

let session;
let home;

/** Runs the command line on the test's folders; its parsed `--json` output. */
function cli(args) {
  const run = spawnSync(CLI, [...args, '--json'], { env: appEnv(home), encoding: 'utf8', timeout: START_DEADLINE_MS });
  assert.equal(run.status, 0, `switchyard ${args.join(' ')} failed: ${run.stdout}${run.stderr}`);
  return JSON.parse(run.stdout);
}

const daemonState = () => cli(['ps']).find((row) => row.name === NAME)?.state;

function daemonPid() {
  const file = join(home, 'data', 'daemon.json');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).pid : null;
}

function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Before the app starts: the model, the daemon's instance file, the app's own
 *  instance of the same name marked as running at its last close, and the daemon
 *  running it (`up` starts the daemon). */
function prepare(dir) {
  home = dir;
  const model = join(dir, 'tiny.gguf');
  const generated = spawnSync(process.env.SWITCHYARD_E2E_GEN_MODEL, ['llama', model], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(generated.status, 0, `gen-model llama failed: ${generated.stderr}`);
  mkdirSync(join(dir, 'config', 'instances'), { recursive: true });
  writeFileSync(join(dir, 'config', 'instances', `${NAME}.toml`),
    `model = ${JSON.stringify(model)}\n[llama]\ncontext = 512\nparallel = 1\nthreads = 2\n`);
  // One the daemon cannot use: the window lists it among the daemon's problems.
  writeFileSync(join(dir, 'config', 'instances', 'broken.toml'), `model = ${JSON.stringify(model)}\n[llama]\nprot = 1\n`);
  mkdirSync(join(dir, 'data', 'state'), { recursive: true });
  writeFileSync(join(dir, 'data', 'state', 'instances.json'), JSON.stringify({
    instances: [{ spec: { name: NAME, model_path: model, config: { context: 512, parallel: 1 } }, was_running: true }],
  }));
  const up = cli(['up', NAME]);
  assert.equal(up.state, 'healthy', JSON.stringify(up));
}

before(async () => {
  assert.ok(CLI && existsSync(CLI), 'SWITCHYARD_E2E_CLI is not set or not built: run through `npm run e2e`');
  assert.ok(existsSync(LLAMA_SERVER),
    `the real llama-server is missing at ${LLAMA_SERVER}: run scripts/build-tool.sh llama-server or set SWITCHYARD_LLAMA_SERVER`);
  session = await launchApp({ settings: { theme: 'light', llama_server_path: LLAMA_SERVER }, prepare });
  await waitUntilReady(session.driver);
});

after(async () => {
  await session?.stop();
  if (!home) return;
  // The daemon outlives the window by design: stop it, whatever the test did.
  const pid = daemonPid();
  spawnSync(CLI, ['daemon', 'stop'], { env: appEnv(home), timeout: DEADLINE_MS });
  const deadline = Date.now() + DEADLINE_MS;
  while (pid && isRunning(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (pid && isRunning(pid)) process.kill(pid, 'SIGKILL');
});

const daemonRow = By.css(`[data-testid="daemon-instance-row"][data-name="${NAME}"]`);
const appRow = By.css(`[data-testid="instance-row"][data-name="${NAME}"]`);

async function stateOf(driver, locator) {
  const found = await driver.findElements(locator);
  return found.length === 0 ? null : found[0].getAttribute('data-state');
}

test('the window shows and drives the daemon, and the app leaves it its instance', async () => {
  const { driver } = session;
  const pid = daemonPid();
  assert.ok(pid, 'the daemon runs');

  await click(driver, 'tab-llm');
  await visible(driver, 'daemon-group');
  assert.match(await textOf(driver, 'daemon-title'), new RegExp(`^Switchyard daemon · pid ${pid} · \\d+\\.\\d+\\.\\d+`));
  await driver.wait(async () => (await stateOf(driver, daemonRow)) === 'healthy', DEADLINE_MS,
    "the daemon's instance never showed healthy");
  // The header: the app's own LLM stopped, the daemon's running.
  assert.equal(await (await visible(driver, 'status-daemon')).getAttribute('data-state'), 'running');
  assert.equal(await (await visible(driver, 'status-llm')).getAttribute('data-state'), 'stopped');
  const problem = await visible(driver, 'daemon-problem');
  assert.equal(await problem.getAttribute('data-code'), 'INVALID_INSTANCE_FILE');
  assert.match(await textOf(driver, 'daemon-problem'), /broken\.toml: `llama\.prot`/);

  // The detail, through the daemon.
  await driver.findElement(daemonRow).click();
  assert.equal(await (await visible(driver, 'daemon-state')).getAttribute('data-state'), 'healthy');
  const endpoint = await textOf(driver, 'daemon-endpoint');
  assert.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  assert.equal((await fetch(endpoint.replace(/\/v1$/, '/health'))).status, 200, 'the endpoint shown is the live one');
  assert.match(await textOf(driver, 'daemon-file'), new RegExp(`instances/${NAME}\\.toml$`));
  await driver.wait(async () => (await driver.findElements(By.css('[data-testid="llm-log-line"]'))).length > 0,
    DEADLINE_MS, "no line of the daemon's log on screen");
  await driver.executeScript('arguments[0].scrollIntoView({ block: "start" })', await visible(driver, 'llm-instances'));
  await screenshot(driver, 'daemon');

  // Stop in the window: the daemon's own `ps` says stopped.
  await click(driver, 'daemon-stop');
  await driver.wait(async () => (await stateOf(driver, daemonRow)) === 'stopped', START_DEADLINE_MS,
    'the window never showed it stopped');
  assert.equal(daemonState(), 'stopped');
  assert.equal(await (await visible(driver, 'status-daemon')).getAttribute('data-state'), 'stopped');

  // Start: healthy again, in the window and for the daemon.
  await click(driver, 'daemon-start');
  await driver.wait(async () => (await stateOf(driver, daemonRow)) === 'healthy', START_DEADLINE_MS,
    'the window never showed it healthy again');
  assert.equal(daemonState(), 'healthy');

  // The app's own `tiny` ran when it last closed: left to the daemon, not failed,
  // the daemon named as its owner, Start disabled.
  await driver.findElement(appRow).click();
  const owner = await visible(driver, 'llm-owner');
  assert.equal(await owner.getAttribute('data-kind'), 'daemon');
  assert.match(await textOf(driver, 'llm-owner'), new RegExp(`Run by the Switchyard daemon \\(pid ${pid}\\)`));
  assert.equal(await stateOf(driver, appRow), 'stopped');
  assert.equal(await (await visible(driver, 'llm-start')).isEnabled(), false, 'Start is disabled');
  assert.equal((await driver.findElements(By.css('[data-testid="llm-error"]'))).length, 0, 'no error shown');
  await screenshot(driver, 'daemon-owner');
});
