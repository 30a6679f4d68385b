import { describe, expect, it } from 'vitest';
import { appendBounded, logEntryOf, predictionText } from './monitor';

describe('monitor log', () => {
  it('logs orchestrator events with their level', () => {
    const offloaded = logEntryOf(
      { type: 'orchestrator', kind: 'offloaded', instances: ['default'], reason: 'too big', stop_ms: 21 },
      1,
      5,
    );
    expect(offloaded).toMatchObject({ kind: 'offloaded', level: 'warn', source: 'orchestrator' });
    expect(offloaded?.text).toContain('default in 21 ms');
    const reloaded = logEntryOf(
      { type: 'orchestrator', kind: 'reloaded', instances: ['default'], paused_ms: 2500, memory_wait_ms: 40, start_ms: 900 },
      2,
      6,
    );
    expect(reloaded).toMatchObject({ kind: 'reloaded', level: 'ok' });
    expect(reloaded?.text).toContain('2.5 s');
    expect(reloaded?.text).toContain('in 900 ms (memory free after 40 ms)');
    const yielded = logEntryOf({ type: 'orchestrator', kind: 'window_yielded', window_ms: 61000, waiting_requests: 2 }, 3, 6);
    expect(yielded).toMatchObject({ kind: 'window_yielded', level: 'info' });
    expect(yielded?.text).toContain('2 chat request(s) waiting');
    const failed = logEntryOf(
      {
        type: 'orchestrator',
        kind: 'reload_failed',
        instances: ['default'],
        error: { code: 'INSUFFICIENT_RESOURCES', message: 'no room', suggestion: '' },
      },
      3,
      7,
    );
    expect(failed).toMatchObject({ level: 'error' });
  });

  it('logs finished image jobs only', () => {
    const progress = { stage: 'sampling', step: 1, steps: 1, percent: 50 } as never;
    expect(logEntryOf({ type: 'image_job_changed', id: 'a', status: 'running', progress, eta_seconds: null, error: null }, 1, 0)).toBeNull();
    expect(logEntryOf({ type: 'image_job_changed', id: 'a', status: 'complete', progress, eta_seconds: null, error: null }, 1, 0)).toMatchObject({
      kind: 'image_complete',
      level: 'ok',
    });
  });

  it('keeps the last entries only', () => {
    let list: number[] = [];
    for (let i = 0; i < 10; i++) list = appendBounded(list, i, 4);
    expect(list).toEqual([6, 7, 8, 9]);
  });

  it('words the prediction', () => {
    expect(predictionText({ needs_offload: true, projected_share: 0.9, bottleneck_is_vram: false, predicted_pause_secs: 3.4 })).toBe(
      'An image now would pause chat for ~3 s (90 % of RAM)',
    );
    expect(predictionText({ needs_offload: false, projected_share: 0.2, bottleneck_is_vram: true, predicted_pause_secs: 0 })).toBe(
      'No offload needed: 20 % of VRAM',
    );
  });
});
