// The installed app (/usr/bin/switchyard-desktop from the .deb, see deb.sh) opens its window
// and its System tab shows this machine's own CPU and RAM.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { launchApp, screenshot, textOf, waitUntilReady } from '../e2e/driver.mjs';

let session;

before(async () => {
  session = await launchApp({ settings: { theme: 'light' } });
  await waitUntilReady(session.driver);
});

after(async () => {
  const { killed } = await session.stop();
  assert.equal(killed, false, 'the installed app ends with its window');
});

test('the installed app shows this machine in the System tab', async () => {
  const { driver } = session;
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const threads = cpuinfo.split('\n').filter((line) => line.startsWith('processor')).length;
  const kib = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))[1]);
  assert.equal(await textOf(driver, 'cpu-threads'), String(threads));
  assert.equal(await textOf(driver, 'ram-total'), `${((kib * 1024) / 2 ** 30).toFixed(1)} GiB`);
  await screenshot(driver, 'installed');
});
