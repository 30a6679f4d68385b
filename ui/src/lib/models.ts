// Model labels for the Models tab. No engine logic: the engine decides what a file
// is (and guesses it from its name: `HubFile.guess`); these only word the tables.
import type { DownloadState } from '../bindings/DownloadState';
import type { FileRole } from '../bindings/FileRole';
import type { HubFile } from '../bindings/HubFile';
import type { InstalledModel } from '../bindings/InstalledModel';
import type { ModelFacts } from '../bindings/ModelFacts';
import type { ModelKind } from '../bindings/ModelKind';
import type { ModelSource } from '../bindings/ModelSource';

const KINDS: Record<ModelKind, string> = { llm: 'LLM', diffusion: 'Diffusion' };
export const kindLabel = (kind: ModelKind): string => KINDS[kind] ?? kind;

const ROLES: Record<FileRole, string> = {
  weights: 'Weights',
  mmproj: 'mmproj',
  vae: 'VAE',
  text_encoder: 'Text encoder',
};
export const roleLabel = (role: FileRole): string => ROLES[role] ?? role;

/** Roles a second file can have, in the order the form offers them. */
export const EXTRA_ROLES: FileRole[] = ['mmproj', 'vae', 'text_encoder'];

const DOWNLOAD_STATES: Record<DownloadState, string> = {
  downloading: 'Downloading',
  paused: 'Paused',
  verifying: 'Verifying',
  complete: 'Complete',
  failed: 'Failed',
  cancelled: 'Cancelled',
};
export const downloadStateLabel = (state: DownloadState): string => DOWNLOAD_STATES[state] ?? state;

/** Complete and cancelled downloads leave the list; the rest can still change. */
export const isFinalState = (state: DownloadState): boolean => state === 'complete' || state === 'cancelled';

/** The last part of a path or URL, without a query string (to show a file's name). */
export function baseName(pathOrUrl: string): string {
  const withoutQuery = pathOrUrl.split(/[?#]/, 1)[0] ?? '';
  const parts = withoutQuery.split('/').filter((part) => part !== '');
  return parts.at(-1) ?? '';
}

/** A file the engine can run (a GGUF): the engine gives it a role. */
export const isModelFile = (file: HubFile): boolean => file.guess.role !== null;

/** "Q4_K_M": what the converter named, else the tensor type holding the most bytes. */
export function quantizationOf(facts: ModelFacts | null | undefined): string | null {
  if (!facts) return null;
  return facts.file_type ?? facts.quantization[0]?.type_name ?? null;
}

/** All files of an installed model, in bytes. */
export const modelBytes = (model: InstalledModel): number =>
  model.files.reduce((sum, file) => sum + file.size_bytes, 0);

/** "bartowski/Llama-3.1-8B-GGUF @ main", or "Direct URL". */
export function sourceLabel(source: ModelSource): string {
  if (source.type === 'hugging_face') {
    return source.revision === 'main' ? source.repo : `${source.repo} @ ${source.revision}`;
  }
  return 'Direct URL';
}

/** `owner/name`, as the Hub spells repositories. */
export const REPO_SHAPE = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Accepts a pasted Hub address too: "https://huggingface.co/owner/name/tree/main" → owner/name. */
export function normalizeRepo(input: string): string {
  const text = input.trim();
  const fromUrl = /^https?:\/\/[^/]+\/([^/\s]+\/[^/\s?#]+)/.exec(text);
  return (fromUrl?.[1] ?? text).replace(/\/+$/, '');
}
