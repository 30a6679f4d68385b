import { cleanup, render, screen } from '@testing-library/svelte';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeRemoteModel } from '../../lib/fixtures';
import { formatBytes } from '../../lib/format';
import MemoryEstimate from './MemoryEstimate.svelte';

afterEach(cleanup);

const estimate = () => {
  const memory = fakeRemoteModel('https://huggingface.co/x', 4_920_739_232, 'Q4_K_M').memory;
  if (!memory) throw new Error('the fixture has an estimate');
  return memory;
};

describe('MemoryEstimate', () => {
  it('says it fits and how it runs, with no VRAM line on a CPU machine', () => {
    render(MemoryEstimate, { memory: estimate() });
    const fit = screen.getByTestId('preview-fit');
    expect(fit.dataset.fits).toBe('true');
    expect(fit.textContent).toContain('Fits');
    expect(fit.textContent).toContain('Runs on the CPU.');
    expect(screen.queryByTestId('preview-split')).toBeNull();
    expect(screen.getByTestId('preview-speed').textContent).toContain('about 7 tokens/s');
  });

  it('claims no speed when the engine could not predict one', () => {
    render(MemoryEstimate, { memory: { ...estimate(), generation_tokens_per_second: null } });
    expect(screen.queryByTestId('preview-speed')).toBeNull();
  });

  it('shows the RAM/VRAM split and the reason when it does not fit', () => {
    const memory = {
      ...estimate(),
      backend: 'cuda' as const,
      ram_bytes: 1_000_000_000,
      vram_bytes: 9_000_000_000,
      gpu_layers: 33,
      fits: false,
      notes: ['This llama model needs 8583 MiB of VRAM, but only 7372 MiB are free', 'Put fewer layers on the GPU.'],
    };
    render(MemoryEstimate, { memory });
    const fit = screen.getByTestId('preview-fit');
    expect(fit.dataset.fits).toBe('false');
    expect(fit.textContent).toContain('Does not fit');
    expect(fit.textContent).toContain('8583 MiB of VRAM');
    const split = screen.getByTestId('preview-split').textContent ?? '';
    expect(split).toContain(formatBytes(1_000_000_000));
    expect(split).toContain(formatBytes(9_000_000_000));
  });
});
