import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DownloadStatus } from '../../bindings/DownloadStatus';
import type { ErrorReport } from '../../bindings/ErrorReport';
import type { InstalledModel } from '../../bindings/InstalledModel';
import {
  LLAMA_REPO,
  fakeDiskUsage,
  fakeDownload,
  fakeGuess,
  fakeHubFiles,
  fakeInstalledModels,
  fakeRemoteModel,
} from '../../lib/fixtures';
import { formatBytes } from '../../lib/format';
import { ModelsStore } from '../../lib/stores/models.svelte';
import ModelsTab from './ModelsTab.svelte';

const WEIGHTS = 'Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf';

let models: InstalledModel[];
let downloads: DownloadStatus[];
let calls: Array<[string, Record<string, unknown>]>;
let failures: Record<string, ErrorReport>;
let stores: ModelsStore[];

beforeEach(() => {
  models = fakeInstalledModels();
  downloads = [fakeDownload()];
  calls = [];
  failures = {};
  stores = [];
  mockIPC((command, args) => {
    calls.push([command, (args ?? {}) as Record<string, unknown>]);
    const failure = failures[command];
    if (failure) throw failure;
    switch (command) {
      case 'list_models':
        return models;
      case 'list_downloads':
        return downloads;
      case 'disk_usage':
        return fakeDiskUsage(models);
      case 'hub_files':
        return fakeHubFiles((args as { repo: string }).repo);
      case 'guess_model_file': {
        const { address } = args as { address: string };
        return fakeGuess(address, 'Q8_0', address.includes('sd-') ? 'diffusion' : 'llm');
      }
      case 'inspect_model':
        return fakeRemoteModel('https://huggingface.co/x', 4_920_739_232, 'Q4_K_M', 8192);
      case 'add_model':
        return 'new-model';
      case 'pause_download':
      case 'resume_download':
      case 'cancel_download':
      case 'verify_model':
      case 'delete_model':
        return null;
    }
    throw `unexpected ${command}`;
  });
});

afterEach(() => {
  cleanup();
  for (const store of stores) store.dispose();
  clearMocks();
});

async function renderTab() {
  const store = new ModelsStore();
  stores.push(store);
  await store.load();
  render(ModelsTab, { store });
  return store;
}

const argsOf = (command: string) => calls.filter(([name]) => name === command).map(([, args]) => args);

describe('ModelsTab: library and downloads', () => {
  it('shows the installed models, with kind, quantization, parameters, size and disk use', async () => {
    await renderTab();
    const rows = screen.getAllByTestId('installed-row');
    expect(rows.map((row) => row.dataset.id)).toEqual(models.map((model) => model.id));

    const llama = within(rows[0]!);
    expect(llama.getByText('Meta-Llama-3.1-8B-Instruct-Q4_K_M')).toBeTruthy();
    expect(llama.getByText('LLM')).toBeTruthy();
    expect(llama.getByText('llama')).toBeTruthy();
    expect(llama.getByText('Q4_K_M')).toBeTruthy();
    expect(llama.getByText('8.03 B')).toBeTruthy();
    expect(llama.getByText('4.6 GiB')).toBeTruthy();
    expect(llama.getByText(LLAMA_REPO)).toBeTruthy();

    // No file type in the header: the tensor type with the most bytes stands in.
    const sd = within(rows[1]!);
    expect(sd.getByText('Diffusion')).toBeTruthy();
    expect(sd.getByText('Q8_0')).toBeTruthy();

    const disk = fakeDiskUsage(models);
    expect(screen.getByTestId('disk-usage-total').textContent).toBe(formatBytes(disk.models_bytes));
    expect(screen.getByTestId('disk-usage-partial').textContent).toBe(formatBytes(disk.partial_bytes));
    expect(screen.getByTestId('disk-usage-free').textContent?.trim()).toBe(formatBytes(disk.free_bytes!));
  });

  it('shows each download with progress, speed, time left and the actions its state allows', async () => {
    downloads = [
      fakeDownload(),
      fakeDownload({
        id: 'broken',
        name: 'Broken',
        state: 'failed',
        speed_bps: 0,
        eta_seconds: null,
        error: { code: 'NETWORK_ERROR', message: 'The connection was reset.', suggestion: 'Resume when the network is back.' },
      }),
    ];
    await renderTab();
    const [running, failed] = screen.getAllByTestId('download-row');
    expect(running!.dataset.id).toBe('qwen2-5-7b-instruct-q4-k-m');
    expect(running!.dataset.state).toBe('downloading');
    const row = within(running!);
    expect(row.getByText('Qwen2.5-7B-Instruct-Q4_K_M')).toBeTruthy();
    expect(row.getByText('Downloading')).toBeTruthy();
    expect(row.getByTestId('download-percent').textContent).toBe('38%');
    expect(running!.textContent).toContain('1.7 GiB of 4.4 GiB');
    expect(running!.textContent).toContain('11.8 MiB/s');
    expect(running!.textContent).toContain('3 min 55 s left');
    expect(row.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('38');
    expect(row.queryByTestId('download-pause')).toBeTruthy();
    expect(row.queryByTestId('download-resume')).toBeNull();
    expect(row.queryByTestId('download-cancel')).toBeTruthy();

    expect(failed!.dataset.state).toBe('failed');
    const broken = within(failed!);
    expect(broken.getByTestId('download-error').textContent).toContain('The connection was reset.');
    expect(broken.getByTestId('download-error').textContent).toContain('Resume when the network is back.');
    expect(broken.queryByTestId('download-pause')).toBeNull();
    expect(broken.queryByTestId('download-resume')).toBeTruthy();
  });

  it('follows download_changed until a finished download leaves', async () => {
    const store = await renderTab();
    store.applyDownload(fakeDownload({ state: 'paused', speed_bps: 0, eta_seconds: null }));
    await waitFor(() => expect(screen.getByTestId('download-row').dataset.state).toBe('paused'));
    expect(screen.queryByTestId('download-pause')).toBeNull();
    expect(screen.getByTestId('download-resume')).toBeTruthy();
    await fireEvent.click(screen.getByTestId('download-resume'));
    expect(argsOf('resume_download')).toEqual([{ id: 'qwen2-5-7b-instruct-q4-k-m' }]);
  });

  it('pauses, and cancels only after confirming', async () => {
    await renderTab();
    await fireEvent.click(screen.getByTestId('download-pause'));
    expect(argsOf('pause_download')).toEqual([{ id: 'qwen2-5-7b-instruct-q4-k-m' }]);

    await fireEvent.click(screen.getByTestId('download-cancel'));
    expect(argsOf('cancel_download')).toEqual([]);
    const dialog = screen.getByTestId('confirm-dialog');
    expect(dialog.textContent).toContain('Qwen2.5-7B-Instruct-Q4_K_M');
    await fireEvent.click(within(dialog).getByText('Keep downloading'));
    expect(screen.queryByTestId('confirm-dialog')).toBeNull();

    await fireEvent.click(screen.getByTestId('download-cancel'));
    await fireEvent.click(screen.getByTestId('confirm-cancel'));
    await waitFor(() => expect(argsOf('cancel_download')).toEqual([{ id: 'qwen2-5-7b-instruct-q4-k-m' }]));
    await waitFor(() => expect(screen.queryByTestId('confirm-dialog')).toBeNull());
  });

  it('explains an empty library and points to the Add card', async () => {
    models = [];
    downloads = [];
    await renderTab();
    expect(screen.getByTestId('models-empty').textContent).toContain('No models yet');
    expect(screen.queryByTestId('installed-row')).toBeNull();
    expect(screen.queryByTestId('downloads-card')).toBeNull();
    await fireEvent.click(screen.getByText('Add your first model'));
    expect(document.activeElement).toBe(screen.getByTestId('hub-repo'));
  });
});

describe('ModelsTab: verify, delete, info', () => {
  it('verifies a model: a spinner, then "Verified" or the error', async () => {
    await renderTab();
    const [first, second] = screen.getAllByTestId('installed-verify');
    await fireEvent.click(first!);
    expect(argsOf('verify_model')).toEqual([{ id: models[0]!.id }]);
    await screen.findByTestId('installed-verified');

    failures.verify_model = {
      code: 'CHECKSUM_MISMATCH',
      message: 'stable-diffusion-v1-5-pruned-emaonly-Q8_0.gguf is damaged.',
      suggestion: 'Delete the model and download it again.',
    };
    await fireEvent.click(second!);
    const error = await screen.findByTestId('installed-verify-error');
    expect(error.dataset.errorCode).toBe('CHECKSUM_MISMATCH');
    expect(error.textContent).toContain('is damaged');
    expect(error.textContent).toContain('Delete the model and download it again.');
  });

  it('deletes after a confirmation that names the model and its size', async () => {
    await renderTab();
    await fireEvent.click(screen.getAllByTestId('installed-delete')[0]!);
    const dialog = screen.getByTestId('confirm-dialog');
    expect(dialog.textContent).toContain('Meta-Llama-3.1-8B-Instruct-Q4_K_M');
    expect(dialog.textContent).toContain('4.6 GiB');
    expect(argsOf('delete_model')).toEqual([]);

    await fireEvent.click(screen.getByTestId('confirm-delete'));
    await waitFor(() => expect(argsOf('delete_model')).toEqual([{ id: models[0]!.id }]));
    await waitFor(() => expect(screen.getAllByTestId('installed-row')).toHaveLength(1));
    expect(screen.queryByTestId('confirm-dialog')).toBeNull();
  });

  it('keeps the confirmation open with the error when deleting fails', async () => {
    failures.delete_model = { code: 'STORAGE_UNAVAILABLE', message: 'models.json is read-only.', suggestion: 'Check the data folder.' };
    await renderTab();
    await fireEvent.click(screen.getAllByTestId('installed-delete')[0]!);
    await fireEvent.click(screen.getByTestId('confirm-delete'));
    const error = await screen.findByTestId('confirm-error');
    expect(error.textContent).toContain('models.json is read-only.');
    expect(screen.getAllByTestId('installed-row')).toHaveLength(2);
  });

  it('shows a model in sections, and builds Raw JSON only when opened, with long arrays cut', async () => {
    const facts = models[0]!.facts!;
    facts.quantization = Array.from({ length: 250 }, (_, i) => ({ type_name: `T${i}`, tensors: 1, bytes: 1000 - i }));
    await renderTab();
    await fireEvent.click(screen.getAllByTestId('installed-info')[0]!);
    const dialog = screen.getByTestId('info-dialog');
    const view = within(dialog);
    expect(view.getByText('Architecture')).toBeTruthy();
    expect(view.getByText('131072')).toBeTruthy();
    expect(view.queryByTestId('raw-json')).toBeNull();

    await fireEvent.click(view.getByTestId('info-section-files'));
    expect(view.getByTestId('info-sha256').textContent).toBe(models[0]!.files[0]!.sha256);
    expect(dialog.textContent).toContain(models[0]!.files[0]!.url);
    expect(view.queryByTestId('raw-json')).toBeNull();

    await fireEvent.click(view.getByTestId('info-section-advanced'));
    expect(view.getAllByTestId('quant-row')).toHaveLength(250);

    await fireEvent.click(view.getByTestId('info-section-raw'));
    const raw = view.getByTestId('raw-json').textContent ?? '';
    expect(raw).toContain('"… 150 more"');
    expect(raw).toContain('"type_name": "T99"');
    expect(raw).not.toContain('"type_name": "T100"');
    expect(raw).toContain(`"id": "${models[0]!.id}"`);

    await fireEvent.click(view.getByLabelText('Close'));
    expect(screen.queryByTestId('info-dialog')).toBeNull();
  });
});

describe('ModelsTab: adding a model', () => {
  it('lists Hub files, previews the chosen one, and downloads it', async () => {
    await renderTab();
    await fireEvent.input(screen.getByTestId('hub-repo'), { target: { value: LLAMA_REPO } });
    await fireEvent.click(screen.getByTestId('hub-list-files'));
    await waitFor(() => expect(screen.getAllByTestId('hub-file')).toHaveLength(10));
    expect(argsOf('hub_files')).toEqual([{ repo: LLAMA_REPO, revision: 'main' }]);

    // Non-GGUF files hide behind a toggle.
    const paths = () => screen.getAllByTestId('hub-file').map((row) => row.dataset.path);
    expect(paths().every((path) => path?.endsWith('.gguf'))).toBe(true);
    await fireEvent.click(screen.getByTestId('hub-show-all'));
    expect(paths()).toContain('README.md');
    await fireEvent.click(screen.getByTestId('hub-show-all'));
    expect(paths()).not.toContain('README.md');

    const row = screen.getAllByTestId('hub-file').find((candidate) => candidate.dataset.path === WEIGHTS)!;
    expect(row.textContent).toContain('4.6 GiB');
    await fireEvent.click(row);
    expect(row.getAttribute('aria-pressed')).toBe('true');
    expect((screen.getByTestId('model-name') as HTMLInputElement).value).toBe('Meta-Llama-3.1-8B-Instruct-Q4_K_M');

    await fireEvent.click(screen.getByTestId('model-preview'));
    const location = { type: 'hub', repo: LLAMA_REPO, revision: 'main', path: WEIGHTS };
    await screen.findByTestId('preview-card');
    expect(argsOf('inspect_model')).toEqual([{ location }]);
    expect(screen.getByTestId('preview-architecture').textContent).toBe('llama');
    expect(screen.getByTestId('preview-context').textContent).toBe('131072');
    expect(screen.getByTestId('preview-layers').textContent).toBe('32');
    const card = screen.getByTestId('preview-card');
    expect(card.textContent).toContain('8.03 B');
    expect(card.textContent).toContain('Q4_K_M');
    expect(card.textContent).toContain('4096');
    expect(card.textContent).toContain('32 / 8');
    expect(card.textContent).toContain('128256');
    expect(card.textContent).toContain('Yes');
    expect(card.textContent).toContain('8,192 tokens');
    expect(card.textContent).toMatch(/Read 8 MiB\s+of a 4.6 GiB file/);

    await fireEvent.input(screen.getByTestId('model-name'), { target: { value: 'Llama 3.1 8B' } });
    await fireEvent.click(screen.getByTestId('model-download'));
    await waitFor(() => expect(argsOf('add_model')).toHaveLength(1));
    expect(argsOf('add_model')[0]).toEqual({
      add: { name: 'Llama 3.1 8B', kind: 'llm', files: [{ location, role: 'weights', expected_sha256: null }] },
    });
    expect((await screen.findByTestId('add-started')).textContent).toContain('Llama 3.1 8B');
  });

  it('adds a second file with the role chosen for it', async () => {
    await renderTab();
    const repo = 'bartowski/Qwen2-VL-7B-Instruct-GGUF';
    await fireEvent.input(screen.getByTestId('hub-repo'), { target: { value: repo } });
    await fireEvent.input(screen.getByTestId('hub-revision'), { target: { value: 'v1.0' } });
    await fireEvent.click(screen.getByTestId('hub-list-files'));
    await waitFor(() => expect(screen.getAllByTestId('hub-file').length).toBeGreaterThan(0));
    expect(argsOf('hub_files')).toEqual([{ repo, revision: 'v1.0' }]);

    const weights = 'Qwen2-VL-7B-Instruct-Q4_K_M.gguf';
    const mmproj = 'mmproj-Qwen2-VL-7B-Instruct-f16.gguf';
    await fireEvent.click(screen.getAllByTestId('hub-file').find((row) => row.dataset.path === weights)!);
    await fireEvent.change(screen.getByTestId('extra-file'), { target: { value: mmproj } });
    expect((screen.getByTestId('extra-role') as HTMLSelectElement).value).toBe('mmproj');
    await fireEvent.click(screen.getByTestId('model-download'));
    await waitFor(() => expect(argsOf('add_model')).toHaveLength(1));
    expect(argsOf('add_model')[0]).toEqual({
      add: {
        name: 'Qwen2-VL-7B-Instruct-Q4_K_M',
        kind: 'llm',
        files: [
          { location: { type: 'hub', repo, revision: 'v1.0', path: weights }, role: 'weights', expected_sha256: null },
          { location: { type: 'hub', repo, revision: 'v1.0', path: mmproj }, role: 'mmproj', expected_sha256: null },
        ],
      },
    });
  });

  it("adds from a URL, with the engine's name and kind for it, the kind changeable", async () => {
    await renderTab();
    await fireEvent.click(screen.getByTestId('source-mode-url'));
    const url = 'https://example.com/models/sd-v1-5-Q8_0.gguf';
    await fireEvent.input(screen.getByTestId('url-input'), { target: { value: url } });
    await waitFor(() => expect((screen.getByTestId('model-name') as HTMLInputElement).value).toBe('sd-v1-5-Q8_0'));
    expect(argsOf('guess_model_file').at(-1)).toEqual({ address: url });
    expect((screen.getByTestId('model-kind') as HTMLSelectElement).value).toBe('diffusion');

    await fireEvent.click(screen.getByTestId('model-preview'));
    await screen.findByTestId('preview-card');
    expect(argsOf('inspect_model')).toEqual([{ location: { type: 'url', url } }]);

    await fireEvent.change(screen.getByTestId('model-kind'), { target: { value: 'llm' } });
    await fireEvent.click(screen.getByTestId('model-download'));
    await waitFor(() => expect(argsOf('add_model')).toHaveLength(1));
    expect(argsOf('add_model')[0]).toEqual({
      add: { name: 'sd-v1-5-Q8_0', kind: 'llm', files: [{ location: { type: 'url', url }, role: 'weights', expected_sha256: null }] },
    });

    await fireEvent.click(screen.getByTestId('source-mode-hub'));
    expect(screen.getByTestId('hub-repo')).toBeTruthy();
  });

  it('shows engine errors inline, with message and suggestion', async () => {
    await renderTab();
    failures.hub_files = {
      code: 'NETWORK_ERROR',
      message: 'huggingface.co answered 404 for owner/missing.',
      suggestion: 'Check the repository name.',
    };
    await fireEvent.input(screen.getByTestId('hub-repo'), { target: { value: 'owner/missing' } });
    await fireEvent.click(screen.getByTestId('hub-list-files'));
    const listError = await screen.findByTestId('hub-error');
    expect(listError.textContent).toContain('answered 404');
    expect(listError.textContent).toContain('Check the repository name.');

    // A name that is not owner/name never reaches the engine.
    await fireEvent.input(screen.getByTestId('hub-repo'), { target: { value: 'not a repo' } });
    await fireEvent.click(screen.getByTestId('hub-list-files'));
    await waitFor(() => expect(screen.getByTestId('hub-error').textContent).toContain('owner/name'));
    expect(argsOf('hub_files')).toHaveLength(1);

    await fireEvent.click(screen.getByTestId('source-mode-url'));
    await fireEvent.input(screen.getByTestId('url-input'), { target: { value: 'https://example.com/a.gguf' } });
    failures.inspect_model = { code: 'INVALID_GGUF', message: 'a.gguf is not a GGUF file.', suggestion: 'Pick a .gguf file.' };
    await fireEvent.click(screen.getByTestId('model-preview'));
    expect((await screen.findByTestId('preview-error')).textContent).toContain('Pick a .gguf file.');

    failures.add_model = { code: 'INVALID_INPUT', message: 'a model named `a` is already installed', suggestion: 'Choose another name.' };
    await fireEvent.click(screen.getByTestId('model-download'));
    const addError = await screen.findByTestId('add-error');
    expect(addError.textContent).toContain('already installed');
    expect(addError.textContent).toContain('Choose another name.');
  });
});
