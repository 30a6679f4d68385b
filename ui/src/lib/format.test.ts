import { describe, expect, it } from 'vitest';
import {
  backendLabel,
  formatBytes,
  formatCount,
  formatEta,
  formatGiB,
  formatMemory,
  formatParams,
  formatPercent,
  formatSpeed,
  formatTokensPerSecond,
  fraction,
  progressPercent,
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

describe('labels', () => {
  it('names vendors, backends, states and placements', () => {
    expect(vendorLabel('nvidia')).toBe('NVIDIA');
    expect(backendLabel('rocm')).toBe('ROCm');
    expect(stateLabel('running')).toBe('Running');
    expect(stateLabel('stopping')).toBe('Stopping');
    expect(runsOnLabel('cpu')).toBe('Runs on CPU');
  });
});

describe('formatBytes, all units', () => {
  it('uses binary units, with GiB exactly as formatGiB', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(8_126_464)).toBe('8 MiB');
    expect(formatBytes(4_920_739_232)).toBe(formatGiB(4_920_739_232));
    expect(formatBytes(4_920_739_232)).toBe('4.6 GiB');
    expect(formatBytes(3 * 2 ** 40)).toBe('3.0 TiB');
    expect(formatBytes(Number.NaN)).toBe('0 B');
  });
});

describe('formatSpeed', () => {
  it('is bytes per second in binary units, and a dash when unknown', () => {
    expect(formatSpeed(12_373_196)).toBe('11.8 MiB/s');
    expect(formatSpeed(300 * 1024)).toBe('300 KiB/s');
    expect(formatSpeed(2 * 2 ** 30)).toBe('2.0 GiB/s');
    expect(formatSpeed(0)).toBe('0 B/s');
    expect(formatSpeed(null)).toBe('—');
    expect(formatSpeed(-1)).toBe('—');
  });
});

describe('formatEta', () => {
  it('reads like "2 min 5 s", dropping a zero second part', () => {
    expect(formatEta(0)).toBe('0 s');
    expect(formatEta(45)).toBe('45 s');
    expect(formatEta(125)).toBe('2 min 5 s');
    expect(formatEta(120)).toBe('2 min');
    expect(formatEta(3_780)).toBe('1 h 3 min');
    expect(formatEta(7_200)).toBe('2 h');
    expect(formatEta(2 * 86_400 + 4 * 3_600)).toBe('2 d 4 h');
    expect(formatEta(null)).toBe('—');
    expect(formatEta(Number.POSITIVE_INFINITY)).toBe('—');
  });
});

describe('formatParams', () => {
  it('has three significant digits and a short scale', () => {
    expect(formatParams(8_030_261_248)).toBe('8.03 B');
    expect(formatParams(567_000_000)).toBe('567 M');
    expect(formatParams(70_553_706_496)).toBe('70.6 B');
    expect(formatParams(1_066_235_307)).toBe('1.07 B');
    expect(formatParams(8_000_000_000)).toBe('8 B');
    expect(formatParams(999_700_000)).toBe('1 B');
    expect(formatParams(1_500_000_000_000)).toBe('1.5 T');
    expect(formatParams(135_000)).toBe('135 K');
    expect(formatParams(42)).toBe('42');
    expect(formatParams(null)).toBe('—');
  });
});

describe('progressPercent', () => {
  it('rounds down, so 100% means done, and is null without a total', () => {
    expect(progressPercent(1_781_530_624, 4_683_073_536)).toBe(38);
    expect(progressPercent(999, 1000)).toBe(99);
    expect(progressPercent(1000, 1000)).toBe(100);
    expect(progressPercent(5, null)).toBeNull();
    expect(progressPercent(5, 0)).toBeNull();
  });
});

describe('formatMemory', () => {
  it('names VRAM only when some is used', () => {
    expect(formatMemory(1.3 * 2 ** 30, 0)).toBe('1.3 GiB RAM');
    expect(formatMemory(512 * 2 ** 20, 2 * 2 ** 30)).toBe('512 MiB RAM · 2.0 GiB VRAM');
  });
});

describe('formatTokensPerSecond', () => {
  it('rounds as people read speeds, with a dash when unknown', () => {
    expect(formatTokensPerSecond(0.4)).toBe('under 1 token/s');
    expect(formatTokensPerSecond(1.4)).toBe('about 1 token/s');
    expect(formatTokensPerSecond(3.2)).toBe('about 3 tokens/s');
    expect(formatTokensPerSecond(27.4)).toBe('about 27 tokens/s');
    expect(formatTokensPerSecond(143)).toBe('about 140 tokens/s');
    expect(formatTokensPerSecond(null)).toBe('—');
  });
});
