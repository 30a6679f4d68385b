import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { ImageRequest } from '../../bindings/ImageRequest';
import type { JobView } from '../../bindings/JobView';
import { defaultForm, toRequest } from '../diffusion';
import { fakeCompleteJob, fakeImageServer, fakeJobSummary, fakeProgress, fakeRequestLimits } from '../fixtures';
import { DiffusionStore, GALLERY_LIMIT, dataUrl } from './diffusion.svelte';

const ID = 'img_000001_0a1b2c3d';
let calls: Array<[string, Record<string, unknown>]>;
let jobs: Map<string, JobView>;
let failures: Record<string, ErrorReport>;
let nextId: string;

const request = (): ImageRequest => toRequest({ ...defaultForm(fakeRequestLimits()), prompt: 'a lighthouse', width: 64, height: 64 });
const count = (command: string) => calls.filter(([name]) => name === command).length;

beforeEach(() => {
  calls = [];
  jobs = new Map();
  failures = {};
  nextId = ID;
  mockIPC((command, args) => {
    calls.push([command, (args ?? {}) as Record<string, unknown>]);
    if (failures[command]) throw failures[command];
    switch (command) {
      case 'image_server':
        return null;
      case 'start_image_server':
        return fakeImageServer();
      case 'stop_image_server':
        return null;
      case 'generate_image':
        jobs.set(nextId, { ...fakeJobSummary({ id: nextId, status: 'pending' }), queue_position: 0, result: null });
        return nextId;
      case 'image_job': {
        const job = jobs.get((args as { id: string }).id);
        if (!job) throw { code: 'NOT_FOUND', message: 'gone', suggestion: '' };
        return job;
      }
      case 'cancel_image_job':
        return fakeJobSummary({ id: (args as { id: string }).id, status: 'running' });
      case 'save_image':
        return '/data/gallery/image_1_seed42.png';
    }
    throw `unexpected ${command}`;
  });
});

afterEach(() => clearMocks());

describe('DiffusionStore', () => {
  it('starts and stops the server, and keeps the engine\u2019s typed error', async () => {
    const store = new DiffusionStore();
    await store.load();
    expect(store.loaded).toBe(true);
    expect(store.server).toBeNull();

    await store.start('sdxs');
    expect(calls.at(-1)).toEqual(['start_image_server', { model: 'sdxs' }]);
    expect(store.server?.url).toBe('http://127.0.0.1:8081');
    await store.stop();
    expect(store.server).toBeNull();

    failures.start_image_server = { code: 'PORT_IN_USE', message: 'Port 8081 is taken', suggestion: 'Choose another port.' };
    await store.start('sdxs');
    expect(store.serverError?.code).toBe('PORT_IN_USE');
    expect(store.pending).toBeNull();
    // A start from the tray clears it.
    store.applyServer(fakeImageServer());
    expect(store.serverError).toBeNull();
  });

  it('follows its job by events and fetches the images once, when complete', async () => {
    const store = new DiffusionStore();
    await store.generate(request());
    expect(store.job?.id).toBe(ID);
    expect(store.busy).toBe(true);

    store.applyJob(fakeJobSummary({ progress: fakeProgress({ stage: 'sampling', step: 1, total_steps: 1 }) }));
    expect(store.job?.progress.stage).toBe('sampling');
    expect(count('image_job')).toBe(1); // the one look right after submitting

    jobs.set(ID, fakeCompleteJob(ID, 42, 2, 64));
    const done = fakeJobSummary({ status: 'complete', progress: fakeProgress({ stage: 'done', percent: 100 }) });
    store.applyJob(done);
    store.applyJob(done);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(count('image_job')).toBe(2);
    expect(store.busy).toBe(false);
    expect(store.gallery.map((item) => [item.seed, item.width, item.timeMs])).toEqual([
      [42, 64, 1340],
      [43, 64, 1340],
    ]);
    expect(store.gallery[0].request.prompt).toBe('a lighthouse');
    expect(dataUrl(store.gallery[0])).toMatch(/^data:image\/png;base64,iVBOR/);
  });

  it('catches a job that finished before its id came back', async () => {
    const store = new DiffusionStore();
    nextId = 'img_000002_ffffffff';
    const original = jobs.set.bind(jobs);
    // generate_image stores a pending job; make it complete already.
    jobs.set = (id, _view) => original(id, fakeCompleteJob(id, 7));
    await store.generate(request());
    expect(store.job?.status).toBe('complete');
    expect(store.gallery.map((item) => item.seed)).toEqual([7]);
  });

  it('ignores jobs other programs queued over HTTP', async () => {
    const store = new DiffusionStore();
    await store.generate(request());
    store.applyJob(fakeJobSummary({ id: 'img_000009_00000000', status: 'complete' }));
    expect(store.job?.id).toBe(ID);
    expect(store.gallery).toEqual([]);
  });

  it('keeps a failed job\u2019s error with sd\u2019s exit and stderr, and a refused request\u2019s error', async () => {
    const store = new DiffusionStore();
    await store.generate(request());
    const error = {
      code: 'GENERATION_FAILED' as const,
      message: 'Image generation failed: sd exited with code 1: out of memory',
      suggestion: 'Try a smaller size.',
      details: { exit: 'exited with code 1', exit_code: 1, stderr: ['[ERROR] ggml: out of memory'], out_of_memory: true },
    };
    store.applyJob(fakeJobSummary({ status: 'error', error }));
    expect(store.jobError).toEqual(error);
    expect(store.busy).toBe(false);

    failures.generate_image = { code: 'QUEUE_FULL', message: 'The image queue is full (16 waiting)', suggestion: 'Wait.' };
    await store.generate(request());
    expect(store.jobError?.code).toBe('QUEUE_FULL');
    expect(store.submitting).toBe(false);
  });

  it('cancels its running job and saves images through the engine', async () => {
    const store = new DiffusionStore();
    await store.generate(request());
    store.applyJob(fakeJobSummary());
    await store.cancel();
    expect(calls.filter(([name]) => name === 'cancel_image_job').map(([, args]) => args)).toEqual([{ id: ID }]);

    jobs.set(ID, fakeCompleteJob(ID, 42));
    store.applyJob(fakeJobSummary({ status: 'complete' }));
    await new Promise((resolve) => setTimeout(resolve, 0));
    const path = await store.save(store.gallery[0]);
    expect(path).toBe('/data/gallery/image_1_seed42.png');
    expect(store.gallery[0].savedPath).toBe(path);
    const saved = calls.find(([name]) => name === 'save_image')?.[1];
    expect(saved).toEqual({ image: store.gallery[0].image, seed: 42 });
  });

  it('keeps at most GALLERY_LIMIT images, newest first', async () => {
    const store = new DiffusionStore();
    for (let job = 0; job < 4; job += 1) {
      nextId = `img_00000${job}_00000000`;
      await store.generate(request());
      jobs.set(nextId, fakeCompleteJob(nextId, job * 100, 16));
      store.applyJob(fakeJobSummary({ id: nextId, status: 'complete' }));
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    expect(store.gallery).toHaveLength(GALLERY_LIMIT);
    expect(store.gallery[0].seed).toBe(300);
  });
});
