// Model names, labels and guesses for the Models tab. No engine logic: the engine
// decides what a file is; these only prefill the form and word the tables.
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

export const isGguf = (path: string): boolean => path.toLowerCase().endsWith('.gguf');

/** The last part of a path or URL, without a query string. */
export function baseName(pathOrUrl: string): string {
  const withoutQuery = pathOrUrl.split(/[?#]/, 1)[0] ?? '';
  const parts = withoutQuery.split('/').filter((part) => part !== '');
  return parts.at(-1) ?? '';
}

/** "models/Llama-3.1-8B-Q4_K_M.gguf" → "Llama-3.1-8B-Q4_K_M": the name the form suggests. */
export function nameFromPath(pathOrUrl: string): string {
  let name = baseName(pathOrUrl);
  try {
    name = decodeURIComponent(name);
  } catch {
    // A malformed escape: keep the name as written.
  }
  return name.replace(/\.gguf$/i, '');
}

const QUANT_TAG = /(?:^|[-_.])((?:I?Q\d(?:_[A-Z0-9]+)*)|BF16|F16|F32|FP16|FP32)(?=[-_.]|$)/i;

/** The quantization a file name announces ("…-Q4_K_M.gguf" → "Q4_K_M"), if any. */
export function quantTag(path: string): string | null {
  const match = QUANT_TAG.exec(nameFromPath(path));
  return match?.[1] ? match[1].toUpperCase() : null;
}

/** What a second file most likely is, from its name. */
export function guessRole(path: string): FileRole {
  const name = baseName(path).toLowerCase();
  if (name.includes('mmproj') || name.includes('projector')) return 'mmproj';
  if (name.includes('vae') || name.startsWith('ae.') || name.includes('-ae.')) return 'vae';
  if (/(^|[-_.])(t5|t5xxl|clip|clip_[lg]|umt5|text[-_]?encoder|llm)([-_.]|$)/.test(name)) return 'text_encoder';
  return 'mmproj';
}

/** Whether a name sounds like an image model (stable-diffusion.cpp) rather than an LLM. */
export function guessKind(pathOrName: string): ModelKind {
  return /stable[-_]?diffusion|sdxl|sd[-_]?3|sd[-_]?v?1[-_.]5|sd[-_]?turbo|flux|chroma|wan2|qwen[-_]?image/i.test(pathOrName)
    ? 'diffusion'
    : 'llm';
}

/** Whether a file's name says it goes with weights (a projector, VAE or text encoder). */
export function isCompanion(path: string): boolean {
  return /mmproj|projector|(^|[-_.])(vae|ae|t5xxl|umt5|clip_[lg]|text[-_]?encoder)([-_.]|$)/i.test(baseName(path));
}

/**
 * Weights first, smallest to largest (so quantizations line up by size), then
 * companion GGUF files (mmproj, VAE, encoders), then everything else by name.
 */
export function sortHubFiles(files: HubFile[]): HubFile[] {
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
  const group = (file: HubFile) => (!isGguf(file.path) ? 2 : isCompanion(file.path) ? 1 : 0);
  return [...files].sort((a, b) => {
    const order = group(a) - group(b);
    if (order !== 0) return order;
    if (group(a) === 0) return a.size_bytes - b.size_bytes || collator.compare(a.path, b.path);
    return collator.compare(a.path, b.path);
  });
}

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
