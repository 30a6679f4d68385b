import { describe, expect, it } from 'vitest';
import {
  backendLabel,
  formatAgo,
  formatBytes,
  formatCount,
  formatGiB,
  formatPercent,
  fraction,
  runsOnLabel,
  stateLabel,
  vendorLabel,
} from './format';

describe('formatGiB', () => {
  it('is bytes / 2^30 with one decimal, exactly as the e2e test computes it', () => {
    for (const bytes of [0, 1, 2 ** 30, 33_625_735_168, 16_303_034_368, 8 * 2 ** 30 - 1]) {
      expect(formatGiB(bytes)).toBe((bytes / 2 ** 30).toFixed(1) + ' GiB');
    }
    expect(formatGiB(33_625_735_168)).toBe('31.3 GiB');
    expect(formatGiB(12 * 2 ** 30)).toBe('12.0 GiB');
  });
});

describe('formatBytes', () => {
  it('picks MiB below a GiB and GiB above', () => {
    expect(formatBytes(512 * 2 ** 20)).toBe('512 MiB');
    expect(formatBytes(3 * 2 ** 30)).toBe('3.0 GiB');
    expect(formatBytes(2048)).toBe('2 KiB');
  });
});

describe('formatPercent', () => {
  it('rounds and clamps, and shows a dash when unknown', () => {
    expect(formatPercent(42.4)).toBe('42%');
    expect(formatPercent(99.6)).toBe('100%');
    expect(formatPercent(140)).toBe('100%');
    expect(formatPercent(-3)).toBe('0%');
    expect(formatPercent(null)).toBe('—');
    expect(formatPercent(Number.NaN)).toBe('—');
  });
});

describe('fraction', () => {
  it('is used / total, clamped to 0..1, and 0 without a total', () => {
    expect(fraction(1, 4)).toBe(0.25);
    expect(fraction(5, 4)).toBe(1);
    expect(fraction(1, 0)).toBe(0);
  });
});

describe('formatCount', () => {
  it('shows a dash when the OS did not tell', () => {
    expect(formatCount(8)).toBe('8');
    expect(formatCount(null)).toBe('—');
  });
});

describe('formatAgo', () => {
  it('reads naturally', () => {
    const now = 1_000_000;
    expect(formatAgo(now, now)).toBe('just now');
    expect(formatAgo(now - 1_500, now)).toBe('just now');
    expect(formatAgo(now - 5_000, now)).toBe('5s ago');
    expect(formatAgo(now - 125_000, now)).toBe('2m ago');
    expect(formatAgo(now - 2 * 3_600_000, now)).toBe('2h ago');
    expect(formatAgo(now + 5_000, now)).toBe('just now');
  });
});

describe('labels', () => {
  it('names vendors, backends, states and placements', () => {
    expect(vendorLabel('nvidia')).toBe('NVIDIA');
    expect(backendLabel('rocm')).toBe('ROCm');
    expect(stateLabel('running')).toBe('Running');
    expect(runsOnLabel('cpu')).toBe('Runs on CPU');
  });
});
