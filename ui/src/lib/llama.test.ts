import { describe, expect, it } from 'vitest';
import type { LogLine } from '../bindings/LogLine';
import { endpointUrl, filterLog, formatUptime, freshName, joinArgs, splitArgs } from './llama';

const line = (seq: number, level: LogLine['level'], message: string): LogLine => ({
  seq,
  time: null,
  level,
  tag: null,
  source: 'srv',
  message,
});

describe('llama helpers', () => {
  it('builds the OpenAI base URL', () => {
    expect(endpointUrl('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080/v1');
    expect(endpointUrl(null)).toBeNull();
  });

  it('formats uptimes', () => {
    expect(formatUptime(9_400)).toBe('9 s');
    expect(formatUptime(252_000)).toBe('4 min 12 s');
    expect(formatUptime(7_500_000)).toBe('2 h 05 min');
  });

  it('finds a free name', () => {
    expect(freshName([])).toBe('default');
    expect(freshName(['default', 'default-2'])).toBe('default-3');
  });

  it('splits and joins extra arguments with quotes', () => {
    expect(splitArgs('--temp 0.2  --alias "my model"')).toEqual(['--temp', '0.2', '--alias', 'my model']);
    expect(joinArgs(['--alias', 'my model'])).toBe('--alias "my model"');
  });

  it('filters the log by level and text', () => {
    const lines = [line(1, 'debug', 'tensor x'), line(2, 'info', 'model loaded'), line(3, 'error', 'bad Model')];
    expect(filterLog(lines, '', 'all')).toHaveLength(3);
    expect(filterLog(lines, '', 'warning').map((l) => l.seq)).toEqual([3]);
    expect(filterLog(lines, 'model', 'info').map((l) => l.seq)).toEqual([2, 3]);
  });
});

describe('canonical', () => {
  it('ignores key order', async () => {
    const { canonical } = await import('./llama');
    expect(canonical({ a: 1, b: { d: [1, 2], c: null } })).toBe(canonical({ b: { c: null, d: [1, 2] }, a: 1 }));
    expect(canonical({ a: 1 })).not.toBe(canonical({ a: 2 }));
  });
});
