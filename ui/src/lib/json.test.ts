import { describe, expect, it } from 'vitest';
import { JSON_ARRAY_LIMIT, displayJson, truncateArrays } from './json';

describe('truncateArrays', () => {
  it('keeps the first 100 items of a longer array and says how many more there are', () => {
    const value = { tokens: Array.from({ length: 250 }, (_, i) => i), name: 'x' };
    const shown = truncateArrays(value) as { tokens: unknown[]; name: string };
    expect(JSON_ARRAY_LIMIT).toBe(100);
    expect(shown.tokens).toHaveLength(101);
    expect(shown.tokens[99]).toBe(99);
    expect(shown.tokens[100]).toBe('… 150 more');
    expect(shown.name).toBe('x');
    // The input is left as it was.
    expect(value.tokens).toHaveLength(250);
  });

  it('leaves arrays of 100 or fewer items alone, and cuts nested ones too', () => {
    const value = { a: Array(100).fill(1), deep: [{ list: Array(101).fill('t') }] };
    const shown = truncateArrays(value) as { a: unknown[]; deep: Array<{ list: unknown[] }> };
    expect(shown.a).toHaveLength(100);
    expect(shown.a).not.toContain('… 0 more');
    expect(shown.deep[0]?.list.at(-1)).toBe('… 1 more');
  });

  it('keeps scalars and null as they are', () => {
    expect(truncateArrays(null)).toBeNull();
    expect(truncateArrays('text')).toBe('text');
    expect(truncateArrays(3)).toBe(3);
  });
});

describe('displayJson', () => {
  it('pretty-prints with the marker, quickly even for a huge array', () => {
    const huge = { tokens: Array.from({ length: 2_000_000 }, (_, i) => `token-${i}`) };
    const started = performance.now();
    const text = displayJson(huge);
    expect(performance.now() - started).toBeLessThan(200);
    expect(text).toContain('"… 1999900 more"');
    expect(text).toContain('\n  "tokens": [\n    "token-0",');
    expect(text).not.toContain('token-100"');
    expect(text.split('\n').length).toBeLessThan(110);
  });
});
