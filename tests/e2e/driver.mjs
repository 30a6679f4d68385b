// Starts tauri-driver and opens a WebDriver session on the built app, with its data
// and config folders in a fresh temporary folder.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Builder, By, until } from 'selenium-webdriver';

// Overridable so two runs on one machine do not take each other's driver.
const DRIVER_PORT = Number(process.env.SWITCHYARD_E2E_DRIVER_PORT ?? 4444);
const NATIVE_PORT = Number(process.env.SWITCHYARD_E2E_NATIVE_PORT ?? DRIVER_PORT + 1);
export const DEADLINE_MS = 30_000;

function portOpen(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

async function waitForPort(port, child) {
  const deadline = Date.now() + DEADLINE_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`tauri-driver exited with ${child.exitCode}`);
    if (await portOpen(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tauri-driver did not listen on ${port} within ${DEADLINE_MS} ms`);
}

export function appPath() {
  const app = process.env.SWITCHYARD_E2E_APP;
  if (!app) throw new Error('SWITCHYARD_E2E_APP is not set: run through `npm run e2e`');
  return app;
}

/** Pids of running processes started from `path`. */
function appPids(path) {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readlinkSync(`/proc/${pid}/exe`) === path;
      } catch {
        return false;
      }
    });
}

/** Every thread's stack of a process that should have ended (gdb, when installed). */
function whereItWaits(pid) {
  const traced = spawnSync(
    'gdb',
    ['-p', String(pid), '-batch', '-nx', '-ex', 'thread apply all bt 25'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (traced.error) return `(no stacks: ${traced.error.message})`;
  return traced.stdout.split('\n').filter((line) => /^(Thread|#)/.test(line)).join('\n');
}

/**
 * Closes the app's windows as a person does (the window manager's close button),
 * so the app's own exit path runs: WebDriver cannot, since WebKitWebDriver ends the
 * browser it launched with SIGKILL when its session ends. Returns whether a window
 * was asked to close.
 */
function closeWindows(path) {
  const script = fileURLToPath(new URL('./close-window.py', import.meta.url));
  return appPids(path)
    .map((pid) => spawnSync('python3', [script, pid], { stdio: 'inherit' }).status === 0)
    .includes(true);
}

async function waitForExit(path, ms) {
  const deadline = Date.now() + ms;
  while (appPids(path).length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Ends what is left of the app; whether anything was. Where its window had been
 * asked to close, it should have ended by itself: its stacks say where it waits.
 */
function killLeftovers(path, windowClosed) {
  const leftovers = appPids(path);
  for (const pid of leftovers) {
    if (windowClosed) {
      console.error(`e2e: the app (pid ${pid}) outlived its window; killing it`);
      console.error(whereItWaits(pid));
    }
    process.kill(Number(pid), 'SIGKILL');
  }
  return leftovers.length > 0;
}

/** WebKitWebDriver from a previous session may still be closing down. */
async function waitForPortClosed(port) {
  const deadline = Date.now() + DEADLINE_MS;
  while (Date.now() < deadline && (await portOpen(port))) {
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The environment the app runs with: its folders inside `home`. */
export function appEnv(home) {
  return {
    ...process.env,
    SWITCHYARD_DATA_DIR: join(home, 'data'),
    SWITCHYARD_CONFIG_DIR: join(home, 'config'),
    SWITCHYARD_LOG: 'info',
  };
}

/**
 * Launches the app; returns { driver, home, stop }. `settings` are stored before the
 * launch; `prepare(home)` then runs, to seed (or damage) files the app will find.
 * The first-run wizard is marked done unless `firstRun` is true (its own test).
 */
export async function launchApp({ settings = {}, prepare, firstRun = false } = {}) {
  const app = appPath();
  const home = mkdtempSync(join(tmpdir(), 'switchyard-e2e-'));
  // Closing the window must end the app here: with close-to-tray it would stay
  // alive, and the next launch would only hand over to it (single instance).
  mkdirSync(join(home, 'config'), { recursive: true });
  writeFileSync(
    join(home, 'config', 'settings.json'),
    JSON.stringify({ settings: { close_to_tray: false, first_run_done: !firstRun, ...settings } }),
  );
  prepare?.(home);
  const env = appEnv(home);
  await waitForPortClosed(DRIVER_PORT);
  await waitForPortClosed(NATIVE_PORT);
  const tauriDriver = spawn(
    'tauri-driver',
    ['--port', String(DRIVER_PORT), '--native-port', String(NATIVE_PORT)],
    { env, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  await waitForPort(DRIVER_PORT, tauriDriver);
  const driver = await new Builder()
    .usingServer(`http://127.0.0.1:${DRIVER_PORT}/`)
    .withCapabilities({ browserName: 'wry', 'tauri:options': { application: app } })
    .build();
  /**
   * Closes the window and waits for the app to end; resolves to { killed } (it had
   * to be killed). A window hidden to the tray is not asked: that app is killed.
   */
  const stop = async () => {
    const windowClosed = closeWindows(app);
    if (windowClosed) await waitForExit(app, DEADLINE_MS);
    try {
      // The browser is gone by now; the session only has to end.
      await Promise.race([driver.quit().catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
    } finally {
      const exited = new Promise((resolve) => tauriDriver.once('exit', resolve));
      tauriDriver.kill();
      await exited;
    }
    return { killed: killLeftovers(app, windowClosed) };
  };
  return { driver, home, stop };
}

export const byTestId = (id) => By.css(`[data-testid="${id}"]`);

/**
 * Waits until no element has test id `id`. WebKitWebDriver may answer a lookup made
 * while the element is being removed with a stale element: that is "not gone yet".
 */
export async function waitGone(driver, id, message) {
  await driver.wait(async () => {
    try {
      return (await driver.findElements(byTestId(id))).length === 0;
    } catch (error) {
      if (error.name === 'StaleElementReferenceError') return false;
      throw error;
    }
  }, DEADLINE_MS, message);
}

export async function visible(driver, id) {
  const element = await driver.wait(until.elementLocated(byTestId(id)), DEADLINE_MS);
  await driver.wait(until.elementIsVisible(element), DEADLINE_MS);
  return element;
}

/**
 * Clicks an element by test id. Lists re-render while downloads move, so a found
 * element can go stale before the click lands: look it up again until the deadline.
 */
export async function click(driver, id) {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    try {
      await (await visible(driver, id)).click();
      return;
    } catch (error) {
      const retryable = ['StaleElementReferenceError', 'ElementClickInterceptedError', 'ElementNotInteractableError', 'WebDriverError'];
      if (Date.now() > deadline || !retryable.includes(error.name)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Waits until the app has loaded the system facts. */
export async function waitUntilReady(driver) {
  await driver.wait(
    async () => (await driver.findElements(By.css('[data-ready="true"]'))).length > 0,
    DEADLINE_MS,
    'the window never finished loading the system facts',
  );
}

/** The element's text. WebKitWebDriver's getText() answers '' for some visible
 * elements (seen with ellipsis-styled spans), so read the DOM's own textContent. */
export async function textOf(driver, id) {
  // Lists re-render while the window loads: a found element may go stale before it
  // is read, so look it up again until the deadline.
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    try {
      const element = await visible(driver, id);
      return (await driver.executeScript('return arguments[0].textContent', element)).trim();
    } catch (error) {
      if (Date.now() > deadline || error.name !== 'StaleElementReferenceError') throw error;
    }
  }
}

/** Resolves once the window has painted twice (after a scroll or a re-render). */
export async function painted(driver) {
  await driver.executeAsyncScript(
    'const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done()));',
  );
}

/** WebKitWebDriver can capture a frame older than the DOM: let it paint first. */
export async function screenshot(driver, name) {
  await painted(driver);
  const dir = process.env.SWITCHYARD_E2E_SCREENSHOTS;
  writeFileSync(join(dir, `${name}.png`), await driver.takeScreenshot(), 'base64');
}

export { By, until };
