import { render, screen } from '@testing-library/svelte';
import { flushSync } from 'svelte';
import { describe, expect, it } from 'vitest';
import { fakeCpuOnlySystemInfo, fakeSample, fakeSystemInfo } from '../../lib/fixtures';
import { formatGiB } from '../../lib/format';
import { SystemStore } from '../../lib/stores/system.svelte';
import SystemTab from './SystemTab.svelte';

function storeWith(info = fakeSystemInfo(1_000)) {
  const store = new SystemStore();
  store.setInfo(info);
  return store;
}

describe('SystemTab', () => {
  it('shows the CPU, RAM and recommendation from SystemInfo', () => {
    const info = fakeSystemInfo(1_000);
    render(SystemTab, { store: storeWith(info) });

    expect(screen.getByTestId('cpu-threads').textContent).toBe('16');
    expect(screen.getByTestId('cpu-cores').textContent).toBe('8');
    expect(screen.getByTestId('ram-total').textContent).toBe(formatGiB(info.memory.total_bytes));
    expect(screen.getByTestId('ram-total').textContent).toBe('31.3 GiB');
    expect(screen.getByTestId('ram-available').textContent).toBe(formatGiB(info.memory.available_bytes));
    expect(screen.getByTestId('recommendation-headline').textContent).toBe(info.recommendation.headline);
    for (const detail of info.recommendation.details) expect(screen.getByText(detail)).toBeTruthy();
    expect(screen.getByTestId('system-sampled-at').getAttribute('data-sampled-at')).toBe('1000');
    expect(screen.getByText('AVX2')).toBeTruthy();
    expect(screen.getByText('Debian GNU/Linux 12 (bookworm)')).toBeTruthy();
    // The memory bandwidths that set generation speed, and the speed at the size advised.
    expect(screen.getByTestId('ram-bandwidth').textContent).toBe('38.4 GB/s');
    expect(screen.getByTestId('gpu-0-bandwidth').textContent).toBe('504.0 GB/s');
    expect(screen.getByTestId('recommendation-speed').textContent).toContain('about 42 tokens/s');
  });

  it('shows a dash for physical cores the OS did not report', () => {
    const info = fakeSystemInfo(1_000);
    info.cpu.physical_cores = null;
    render(SystemTab, { store: storeWith(info) });
    expect(screen.getByTestId('cpu-cores').textContent).toBe('—');
  });

  it('shows one card per GPU and no "no GPU" card when there is one', () => {
    render(SystemTab, { store: storeWith() });
    const card = screen.getByTestId('gpu-card-0');
    expect(card.textContent).toContain('NVIDIA GeForce RTX 4070');
    expect(card.textContent).toContain('CUDA');
    expect(card.textContent).toContain('Driver NVIDIA 560.35.03');
    expect(screen.getByTestId('gpu-0-total').textContent).toBe('12.0 GiB');
    expect(screen.queryByTestId('no-gpu-card')).toBeNull();
  });

  it('says models run on the CPU when there is no GPU', () => {
    render(SystemTab, { store: storeWith(fakeCpuOnlySystemInfo(1_000)) });
    expect(screen.getByTestId('no-gpu-card').textContent).toContain('No dedicated GPU found — models run on the CPU');
    expect(screen.queryByTestId('gpu-card-0')).toBeNull();
    const speed = screen.getByTestId('recommendation-speed').textContent ?? '';
    expect(speed).toContain('about 1 token/s');
    expect(speed).toContain('10 tokens/s or more');
  });

  it('says when a GPU does not report its memory use, and notes unified memory', () => {
    const info = fakeSystemInfo(1_000);
    const gpu = info.gpus[0]!;
    gpu.vendor = 'apple';
    gpu.unified_memory = true;
    gpu.memory.used_bytes = null;
    gpu.memory.free_bytes = null;
    render(SystemTab, { store: storeWith(info) });
    const card = screen.getByTestId('gpu-card-0');
    expect(card.textContent).toContain('use not reported');
    expect(card.textContent).toContain('Unified memory');
    expect(screen.getByTestId('gpu-0-free').textContent).toBe('—');
  });

  it('updates RAM and the sample time when a sample arrives', () => {
    const store = storeWith(fakeSystemInfo(1_000));
    render(SystemTab, { store });
    const next = fakeSample(3_000, 5);
    store.applySample(next);
    flushSync();
    expect(screen.getByTestId('ram-available').textContent).toBe(formatGiB(next.memory.available_bytes));
    expect(screen.getByTestId('system-sampled-at').getAttribute('data-sampled-at')).toBe('3000');
  });

  it('shows a loading state, then the ErrorReport when system_info fails', () => {
    const store = new SystemStore();
    render(SystemTab, { store });
    expect(screen.getByText('Reading hardware…')).toBeTruthy();

    store.error = { code: 'HARDWARE_UNREADABLE', message: 'Cannot read /proc/meminfo.', suggestion: 'Check /proc.' };
    flushSync();
    const banner = screen.getByTestId('system-error');
    expect(banner.textContent).toContain('Cannot read /proc/meminfo.');
    expect(banner.textContent).toContain('Check /proc.');
    expect(screen.queryByText('Reading hardware…')).toBeNull();
  });
});
