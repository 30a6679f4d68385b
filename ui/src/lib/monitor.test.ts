import { describe, expect, it } from 'vitest';
import { appendBounded, logEntryOf, predictionText } from './monitor';

describe('monitor log', () => {
  it('logs the router’s loads, unloads and failed loads with their reasons', () => {
    const GIB = 2 ** 30;
    const loaded = logEntryOf(
      { type: 'orchestrator', kind: 'model_loaded', instance: 'qwen', reason: 'requested; unloaded llama to make room', load_ms: 2400, ram_bytes: 5 * GIB, vram_bytes: 2 * GIB },
      1,
      5,
    );
    expect(loaded).toMatchObject({ kind: 'model_loaded', level: 'ok', source: 'orchestrator' });
    expect(loaded?.text).toBe('Loaded qwen in 2.4 s (5.0 GiB RAM · 2.0 GiB VRAM): requested; unloaded llama to make room');
    const unloaded = logEntryOf(
      { type: 'orchestrator', kind: 'model_unloaded', instance: 'llama', reason: 'idle for 15 min', ram_bytes: GIB, vram_bytes: 0 },
      2,
      6,
    );
    expect(unloaded).toMatchObject({ kind: 'model_unloaded', level: 'info' });
    expect(unloaded?.text).toBe('Unloaded llama, freeing 1.0 GiB RAM: idle for 15 min');
    const failed = logEntryOf(
      {
        type: 'orchestrator',
        kind: 'model_load_failed',
        instance: 'huge',
        error: { code: 'INSUFFICIENT_RESOURCES', message: 'needs 40 GiB, 12 GiB free', suggestion: '' },
      },
      3,
      7,
    );
    expect(failed).toMatchObject({ kind: 'model_load_failed', level: 'error' });
    expect(failed?.text).toBe('Could not load huge: needs 40 GiB, 12 GiB free');
  });

  it('logs conversations saved before a stop and restored after, with what failed', () => {
    const MIB = 2 ** 20;
    const saved = logEntryOf(
      { type: 'llama_slots', instance: 'chat', action: 'save', slots: 3, tokens: 6120, bytes: 41 * MIB, elapsed_ms: 120, problems: [], evicted_files: 0 },
      1,
      5,
    );
    expect(saved).toMatchObject({ kind: 'llm_slots_saved', level: 'ok', source: 'llm' });
    expect(saved?.text).toBe('LLM chat: saved 3 conversation(s) (6120 tokens, 41 MiB) in 120 ms');
    const restored = logEntryOf(
      { type: 'llama_slots', instance: 'chat', action: 'restore', slots: 1, tokens: 2040, bytes: 14 * MIB, elapsed_ms: 35, problems: ['slot 1: llama-server answered 400: Unable to restore slot'], evicted_files: 0 },
      2,
      6,
    );
    expect(restored).toMatchObject({ kind: 'llm_slots_restored', level: 'warn' });
    expect(restored?.text).toBe(
      'LLM chat: restored 1 conversation(s) (2040 tokens, 14 MiB) in 35 ms; not restored: slot 1: llama-server answered 400: Unable to restore slot',
    );
    const trimmed = logEntryOf(
      { type: 'llama_slots', instance: 'chat', action: 'save', slots: 0, tokens: 0, bytes: 0, elapsed_ms: 3, problems: [], evicted_files: 2 },
      3,
      7,
    );
    expect(trimmed?.text).toBe('LLM chat: saved no conversation; 2 older file(s) deleted for the disk budget');
  });

  it('logs orchestrator events with their level', () => {
    const offloaded = logEntryOf(
      { type: 'orchestrator', kind: 'offloaded', instances: ['default'], reason: 'too big', drain_ms: 1200, cut_requests: 0, stop_ms: 21 },
      1,
      5,
    );
    expect(offloaded).toMatchObject({ kind: 'offloaded', level: 'warn', source: 'orchestrator' });
    expect(offloaded?.text).toBe('Offloaded default: answers under way finished in 1200 ms, stopped in 21 ms: too big');
    const cut = logEntryOf(
      { type: 'orchestrator', kind: 'offloaded', instances: ['default'], reason: 'too big', drain_ms: 30000, cut_requests: 2, stop_ms: 104 },
      1,
      5,
    );
    expect(cut?.text).toContain('2 answer(s) still being written were cut (sent again when it is back)');
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
    const quiet = { answers_in_progress: 0, drain_wait_secs: 0 };
    expect(predictionText({ needs_offload: true, projected_share: 0.9, bottleneck_is_vram: false, predicted_pause_secs: 3.4, ...quiet })).toBe(
      'An image now would pause chat for ~3 s (90 % of RAM)',
    );
    expect(
      predictionText({
        needs_offload: true,
        projected_share: 0.9,
        bottleneck_is_vram: false,
        predicted_pause_secs: 3.4,
        answers_in_progress: 2,
        drain_wait_secs: 30,
      }),
    ).toBe('An image now would pause chat for ~3 s (90 % of RAM), after the 2 answer(s) being written (up to 30 s)');
    expect(predictionText({ needs_offload: false, projected_share: 0.2, bottleneck_is_vram: true, predicted_pause_secs: 0, ...quiet })).toBe(
      'No offload needed: 20 % of VRAM',
    );
  });
});
