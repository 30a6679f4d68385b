import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { JobView } from '../../bindings/JobView';
import type { ServiceState } from '../../bindings/ServiceState';
import { fakeBinaryStatus, fakeCompleteJob, fakeImageServer, fakeInstalledModels, fakeJobSummary, fakeProgress } from '../../lib/fixtures';
import { BinarySetup } from '../../lib/stores/binaries.svelte';
import { DiffusionStore } from '../../lib/stores/diffusion.svelte';
import DiffusionTab from './DiffusionTab.svelte';

const ID = 'img_000001_0a1b2c3d';
const SD_MODEL = 'stable-diffusion-v1-5-q8-0';
let calls: Array<[string, Record<string, unknown>]>;
let failures: Record<string, ErrorReport>;
let job: JobView | null;

beforeEach(() => {
  calls = [];
  failures = {};
  job = null;
  mockIPC((command, args) => {
    calls.push([command, (args ?? {}) as Record<string, unknown>]);
    if (failures[command]) throw failures[command];
    switch (command) {
      case 'start_image_server':
        return fakeImageServer({ model: (args as { model: string }).model });
      case 'stop_image_server':
        return null;
      case 'generate_image':
        job = { ...fakeJobSummary({ id: ID, status: 'pending', progress: fakeProgress({ stage: 'queued', step: 0, percent: 0 }), eta_seconds: null }), queue_position: 0, result: null };
        return ID;
      case 'image_job':
        return job;
      case 'cancel_image_job':
        return fakeJobSummary({ id: ID });
      case 'save_image':
        return '/home/me/.local/share/switchyard/gallery/image_1_seed42.png';
    }
    throw `unexpected ${command}`;
  });
});

afterEach(() => {
  cleanup();
  clearMocks();
});

let engineSays: (state: ServiceState) => Promise<void>;

/** The tab with the engine's image-server state; `engineSays` stands for a `status_changed` event. */
function renderTab({ sdReady = true, models = fakeInstalledModels(), running = false } = {}) {
  const binary = new BinarySetup('diffusion');
  binary.loaded = true;
  if (sdReady) binary.status = fakeBinaryStatus('diffusion');
  const store = new DiffusionStore();
  store.loaded = true;
  if (running) store.server = fakeImageServer();
  const props = { binary, store, models, serviceState: (running ? 'running' : 'stopped') as ServiceState };
  const { rerender } = render(DiffusionTab, props);
  engineSays = (state) => rerender({ ...props, serviceState: state });
  return store;
}

const argsOf = (command: string) => calls.filter(([name]) => name === command).map(([, args]) => args);
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('DiffusionTab: the image server', () => {
  it('keeps the sd setup on top and cannot start without sd or a diffusion model, saying why', () => {
    renderTab({ sdReady: false });
    expect(screen.getByTestId('binary-card').dataset.kind).toBe('diffusion');
    expect((screen.getByTestId('diffusion-start') as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId('diffusion-blocked').textContent).toContain('Set up sd');
    cleanup();

    renderTab({ models: fakeInstalledModels().filter((model) => model.kind === 'llm') });
    expect((screen.getByTestId('diffusion-start') as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId('diffusion-blocked').textContent).toContain('Models tab');
    expect(screen.queryByTestId('diffusion-prompt')).toBeNull();
  });

  it('starts with the chosen model, shows the address to copy, and stops', async () => {
    const store = renderTab();
    const picker = screen.getByTestId('diffusion-model') as HTMLSelectElement;
    expect([...picker.options].map((option) => option.value)).toEqual([SD_MODEL]);
    await fireEvent.click(screen.getByTestId('diffusion-start'));
    await engineSays('starting');
    expect(screen.getByTestId('diffusion-server').dataset.state).toBe('starting');
    await waitFor(() => expect(store.server).not.toBeNull());
    await engineSays('running');
    expect(screen.getByTestId('diffusion-server').dataset.state).toBe('running');
    expect(argsOf('start_image_server')).toEqual([{ model: SD_MODEL }]);
    expect(screen.getByTestId('diffusion-address').textContent).toBe('http://127.0.0.1:8081');
    expect(screen.getByRole('button', { name: 'Copy image API address' })).toBeTruthy();
    expect(screen.getByTestId('diffusion-prompt')).toBeTruthy();

    await fireEvent.click(screen.getByTestId('diffusion-stop'));
    await engineSays('stopping');
    expect(screen.getByTestId('diffusion-server').dataset.state).toBe('stopping');
    await waitFor(() => expect(store.server).toBeNull());
    await engineSays('stopped');
    expect(screen.getByTestId('diffusion-server').dataset.state).toBe('stopped');
    expect(screen.queryByTestId('diffusion-prompt')).toBeNull();
  });

  it("shows the engine's state, whoever started the server (the tray too)", async () => {
    renderTab();
    await engineSays('starting');
    expect(screen.getByTestId('diffusion-server').textContent).toContain('Starting…');
    expect((screen.getByTestId('diffusion-start') as HTMLButtonElement).disabled).toBe(true);
    await engineSays('failed');
    expect(screen.getByTestId('diffusion-server').dataset.state).toBe('failed');
    expect((screen.getByTestId('diffusion-start') as HTMLButtonElement).disabled).toBe(false);
  });

  it('shows why the server could not start', async () => {
    failures.start_image_server = { code: 'PORT_IN_USE', message: 'Port 8081 on 127.0.0.1 is already in use', suggestion: 'Choose another image port in Settings.' };
    renderTab();
    await fireEvent.click(screen.getByTestId('diffusion-start'));
    const banner = await screen.findByTestId('diffusion-server-error');
    expect(banner.dataset.errorCode).toBe('PORT_IN_USE');
    expect(banner.textContent).toContain('Choose another image port');
    await engineSays('failed');
    expect(screen.getByTestId('diffusion-server').dataset.state).toBe('failed');
  });
});

describe('DiffusionTab: generating', () => {
  it('offers the running sd\u2019s samplers and schedulers and checks sizes before sending', async () => {
    renderTab({ running: true });
    const samplers = [...(screen.getByTestId('diffusion-sampler') as HTMLSelectElement).options].map((option) => option.value);
    expect(samplers).toEqual(['', ...fakeImageServer().capabilities.samplers]);
    const schedulers = [...(screen.getByTestId('diffusion-scheduler') as HTMLSelectElement).options].map((option) => option.value);
    expect(schedulers).toEqual(['', ...fakeImageServer().capabilities.schedulers]);

    await fireEvent.input(screen.getByTestId('diffusion-prompt'), { target: { value: 'a cat' } });
    await fireEvent.input(screen.getByTestId('diffusion-width'), { target: { value: '100' } });
    expect(screen.getByTestId('problem-width').textContent).toBe('A multiple of 64 from 64 to 2048.');
    await fireEvent.click(screen.getByTestId('diffusion-generate'));
    expect(argsOf('generate_image')).toEqual([]);
  });

  it('sends the form, follows the stages with step, image i of n and ETA, then shows the images', async () => {
    const store = renderTab({ running: true });
    await fireEvent.input(screen.getByTestId('diffusion-prompt'), { target: { value: 'a lighthouse' } });
    await fireEvent.input(screen.getByTestId('diffusion-width'), { target: { value: '64' } });
    await fireEvent.input(screen.getByTestId('diffusion-height'), { target: { value: '64' } });
    await fireEvent.input(screen.getByTestId('diffusion-steps'), { target: { value: '4' } });
    await fireEvent.input(screen.getByTestId('diffusion-count'), { target: { value: '2' } });
    await fireEvent.change(screen.getByTestId('diffusion-sampler'), { target: { value: 'euler' } });
    await fireEvent.click(screen.getByTestId('diffusion-seed-fixed'));
    await fireEvent.input(screen.getByTestId('diffusion-seed'), { target: { value: '42' } });
    await fireEvent.click(screen.getByTestId('diffusion-generate'));

    await waitFor(() => expect(argsOf('generate_image')).toHaveLength(1));
    expect(argsOf('generate_image')[0].request).toMatchObject({
      prompt: 'a lighthouse', width: 64, height: 64, steps: 4, count: 2, sampler: 'euler', scheduler: null, seed: 42,
    });
    const progress = await screen.findByTestId('diffusion-progress');
    expect(progress.dataset.stage).toBe('queued');
    expect((screen.getByTestId('diffusion-generate') as HTMLButtonElement).disabled).toBe(true);

    store.applyJob(fakeJobSummary({ id: ID, progress: fakeProgress({ stage: 'sampling', step: 3, total_steps: 4, image: 2, images: 2, percent: 61 }), eta_seconds: 2.4 }));
    await waitFor(() => expect(screen.getByTestId('diffusion-progress').dataset.stage).toBe('sampling'));
    expect(screen.getByTestId('diffusion-step').textContent).toBe('step 3/4');
    expect(screen.getByTestId('diffusion-image-index').textContent).toBe('image 2 of 2');
    expect(screen.getByTestId('diffusion-percent').textContent).toBe('61%');
    expect(screen.getByTestId('diffusion-eta').textContent).toContain('2 s left');

    store.applyJob(fakeJobSummary({ id: ID, progress: fakeProgress({ stage: 'decoding', step: 1, total_steps: 1, image: 2, images: 2, percent: 92 }), eta_seconds: null }));
    await waitFor(() => expect(screen.getByTestId('diffusion-progress').dataset.stage).toBe('decoding'));

    job = fakeCompleteJob(ID, 42, 2, 64);
    store.applyJob(fakeJobSummary({ id: ID, status: 'complete', progress: job.progress, eta_seconds: null }));
    const images = await screen.findAllByTestId('gallery-image');
    expect(images.map((image) => image.dataset.seed)).toEqual(['42', '43']);
    expect((images[0] as HTMLImageElement).src).toMatch(/^data:image\/png;base64,/);
    expect(screen.getAllByTestId('gallery-time')[0].textContent).toBe('1.3 s');
    expect(screen.queryByTestId('diffusion-cancel')).toBeNull();
    expect((screen.getByTestId('diffusion-generate') as HTMLButtonElement).disabled).toBe(false);
    expect(argsOf('image_job').length).toBeLessThanOrEqual(2);

    // Save goes through the engine, which names the file in the gallery folder.
    const first = screen.getAllByTestId('gallery-item')[0];
    await fireEvent.click(within(first).getByTestId('gallery-save'));
    expect(await within(first).findByTestId('gallery-saved')).toBeTruthy();
    expect(argsOf('save_image')).toEqual([{ image: job.result?.images[0].image, seed: 42 }]);
  });

  it('cancels the running job', async () => {
    const store = renderTab({ running: true });
    await fireEvent.input(screen.getByTestId('diffusion-prompt'), { target: { value: 'a cat' } });
    await fireEvent.click(screen.getByTestId('diffusion-generate'));
    await waitFor(() => expect(argsOf('generate_image')).toHaveLength(1));
    await flush();
    store.applyJob(fakeJobSummary({ id: ID }));
    await fireEvent.click(await screen.findByTestId('diffusion-cancel'));
    expect(argsOf('cancel_image_job')).toEqual([{ id: ID }]);
    store.applyJob(fakeJobSummary({ id: ID, status: 'cancelled', progress: fakeProgress({ stage: 'done' }) }));
    await waitFor(() => expect(screen.getByTestId('diffusion-progress').dataset.status).toBe('cancelled'));
    expect(screen.queryByTestId('diffusion-cancel')).toBeNull();
  });

  it('shows a failed generation\u2019s code, message, suggestion and sd\u2019s stderr in a details block', async () => {
    const store = renderTab({ running: true });
    await fireEvent.input(screen.getByTestId('diffusion-prompt'), { target: { value: 'a cat' } });
    await fireEvent.click(screen.getByTestId('diffusion-generate'));
    await waitFor(() => expect(argsOf('generate_image')).toHaveLength(1));
    await flush();
    store.applyJob(fakeJobSummary({
      id: ID,
      status: 'error',
      progress: fakeProgress({ stage: 'done' }),
      error: {
        code: 'GENERATION_FAILED',
        message: 'Image generation failed: sd exited with code 1: [ERROR] failed to allocate',
        suggestion: 'Try a smaller image.',
        details: { exit: 'exited with code 1', exit_code: 1, stderr: ['[INFO ] loading', '[ERROR] failed to allocate'], out_of_memory: true },
      },
    }));
    const error = await screen.findByTestId('diffusion-error');
    expect(error.dataset.errorCode).toBe('GENERATION_FAILED');
    expect(error.textContent).toContain('Try a smaller image.');
    const details = screen.getByTestId('diffusion-error-details') as HTMLDetailsElement;
    expect(details.open).toBe(false);
    expect(details.textContent).toContain('exit code 1');
    expect(screen.getByTestId('diffusion-stderr').textContent).toBe('[INFO ] loading\n[ERROR] failed to allocate');
  });
});
