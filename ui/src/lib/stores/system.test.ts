import { describe, expect, it } from 'vitest';
import type { SystemSample } from '../../bindings/SystemSample';
import { fakeSystemInfo } from '../fixtures';
import { HISTORY_LENGTH, SystemStore } from './system.svelte';

const GIB = 2 ** 30;

function sample(at: number, overrides: Partial<SystemSample> = {}): SystemSample {
  return {
    sampled_at_ms: at,
    cpu_usage_percent: 12.5,
    memory: { total_bytes: 32 * GIB, available_bytes: 20 * GIB, used_bytes: 12 * GIB },
    gpus: [],
    ...overrides,
  };
}

function twoGpuInfo() {
  const info = fakeSystemInfo(1000);
  const first = info.gpus[0]!;
  info.gpus = [
    { ...first, index: 0, memory: { ...first.memory, index: 0 } },
    { ...first, index: 1, name: 'Second', memory: { ...first.memory, index: 1, used_bytes: 0 } },
  ];
  return info;
}

describe('SystemStore.applySample', () => {
  it('replaces memory, CPU usage and the sample time', () => {
    const store = new SystemStore();
    store.setInfo(fakeSystemInfo(1000));
    expect(store.cpuUsagePercent).toBeNull();

    store.applySample(sample(3000));

    expect(store.info?.memory).toEqual({ total_bytes: 32 * GIB, available_bytes: 20 * GIB, used_bytes: 12 * GIB });
    expect(store.cpuUsagePercent).toBe(12.5);
    expect(store.info?.sampled_at_ms).toBe(3000);
    // What does not change stays as it was.
    expect(store.info?.cpu.logical_cores).toBe(16);
    expect(store.info?.recommendation.headline).toMatch(/RTX 4070/);
  });

  it("matches each GPU's memory by index, whatever the order", () => {
    const store = new SystemStore();
    store.setInfo(twoGpuInfo());
    const memory = (index: number, used: number) => ({
      index,
      total_bytes: 12 * GIB,
      used_bytes: used,
      free_bytes: 12 * GIB - used,
      utilization_percent: 50,
    });

    store.applySample(sample(2000, { gpus: [memory(1, 5 * GIB), memory(0, 2 * GIB), memory(7, 1)] }));

    expect(store.info?.gpus[0]?.memory.used_bytes).toBe(2 * GIB);
    expect(store.info?.gpus[1]?.memory.used_bytes).toBe(5 * GIB);
    expect(store.info?.gpus[1]?.name).toBe('Second');
    expect(store.info?.gpus).toHaveLength(2);
  });

  it('keeps a GPU the sample does not mention as it was', () => {
    const store = new SystemStore();
    store.setInfo(twoGpuInfo());
    const before = store.info?.gpus[0]?.memory.used_bytes;
    store.applySample(sample(2000, { gpus: [] }));
    expect(store.info?.gpus[0]?.memory.used_bytes).toBe(before);
  });

  it(`keeps the last ${HISTORY_LENGTH} readings, oldest first`, () => {
    const store = new SystemStore();
    store.setInfo(fakeSystemInfo(0));
    for (let i = 1; i <= HISTORY_LENGTH + 15; i++) store.applySample(sample(i * 2000));

    expect(store.history).toHaveLength(HISTORY_LENGTH);
    expect(store.history[0]?.sampled_at_ms).toBe(16 * 2000);
    expect(store.history.at(-1)?.sampled_at_ms).toBe((HISTORY_LENGTH + 15) * 2000);
    expect(store.history.at(-1)?.ram_used_bytes).toBe(12 * GIB);
  });

  it('ignores a sample older than what it shows', () => {
    const store = new SystemStore();
    store.setInfo(fakeSystemInfo(5000));
    store.applySample(sample(4000));
    expect(store.info?.sampled_at_ms).toBe(5000);
    expect(store.history).toHaveLength(1);
  });

  it('applies a sample that arrived before the first snapshot once it is there', () => {
    const store = new SystemStore();
    store.applySample(sample(9000));
    expect(store.info).toBeNull();
    store.setInfo(fakeSystemInfo(8000));
    expect(store.info?.sampled_at_ms).toBe(9000);
    expect(store.cpuUsagePercent).toBe(12.5);
  });
});
