import { describe, expect, it } from 'vitest';
import { defaultForm, formProblems, formatDuration, stageLabel, toRequest } from './diffusion';
import { fakeRequestLimits } from './fixtures';

const limits = fakeRequestLimits();
const filled = () => ({ ...defaultForm(limits), prompt: 'a cat' });

describe('the Diffusion form', () => {
  it('starts from the engine\u2019s defaults with a random seed', () => {
    const form = defaultForm(limits);
    expect(form).toMatchObject({ width: 512, height: 512, steps: 20, cfgScale: 7, count: 1, seedMode: 'random' });
    expect(formProblems(form, limits)).toEqual({ prompt: 'Describe the image.' });
    expect(formProblems(filled(), limits)).toEqual({});
  });

  it('wants sides that are multiples of the engine\u2019s step, within its bounds', () => {
    for (const side of [0, 63, 100, 2112, 64.5, Number.NaN]) {
      expect(formProblems({ ...filled(), width: side }, limits).width).toBe('A multiple of 64 from 64 to 2048.');
    }
    for (const side of [64, 576, 2048]) {
      expect(formProblems({ ...filled(), height: side }, limits).height).toBeUndefined();
    }
  });

  it('bounds steps, CFG, count and a fixed seed', () => {
    const problems = formProblems({ ...filled(), steps: 151, cfgScale: 31, count: 17, seedMode: 'fixed', seed: -1 }, limits);
    expect(Object.keys(problems).sort()).toEqual(['cfgScale', 'count', 'seed', 'steps']);
    // A random seed ignores whatever the hidden field holds.
    expect(formProblems({ ...filled(), seedMode: 'random', seed: -1 }, limits)).toEqual({});
  });

  it('sends null for sd\u2019s defaults and for a random seed', () => {
    expect(toRequest(filled())).toMatchObject({ sampler: null, scheduler: null, seed: null, prompt: 'a cat' });
    const fixed = toRequest({ ...filled(), sampler: 'euler', scheduler: 'karras', seedMode: 'fixed', seed: 7, count: 3 });
    expect(fixed).toMatchObject({ sampler: 'euler', scheduler: 'karras', seed: 7, count: 3, cfg_scale: 7 });
  });

  it('names stages and durations in words', () => {
    expect(stageLabel('decoding')).toBe('Decoding');
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(1340)).toBe('1.3 s');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
  });
});
