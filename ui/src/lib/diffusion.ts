// The Diffusion form: its fields, checked against the bounds the engine reports for
// its running server (RequestLimits), and turned into an ImageRequest. The engine
// checks every request again; this only says what is wrong before sending.
import type { ImageRequest } from '../bindings/ImageRequest';
import type { RequestLimits } from '../bindings/RequestLimits';
import type { RunnerKind } from '../bindings/RunnerKind';
import type { Stage } from '../bindings/Stage';

/** How the image server runs sd, in words. */
export const RUNNER_LABELS: Record<RunnerKind, string> = {
  auto: 'automatic',
  cli: 'sd-cli per image',
  server: 'sd-server (model kept loaded)',
};

export interface ImageForm {
  prompt: string;
  negativePrompt: string;
  width: number;
  height: number;
  steps: number;
  cfgScale: number;
  /** '' leaves sd's default. */
  sampler: string;
  scheduler: string;
  seedMode: 'random' | 'fixed';
  seed: number;
  count: number;
}

export type FormField = 'prompt' | 'width' | 'height' | 'steps' | 'cfgScale' | 'seed' | 'count';
export type FormProblems = Partial<Record<FormField, string>>;

/** A fresh form with the engine's defaults. */
export function defaultForm(limits: RequestLimits): ImageForm {
  return {
    prompt: '',
    negativePrompt: '',
    width: limits.default_side,
    height: limits.default_side,
    steps: limits.default_steps,
    cfgScale: limits.default_cfg_scale,
    sampler: '',
    scheduler: '',
    seedMode: 'random',
    seed: 0,
    count: 1,
  };
}

function whole(value: number): boolean {
  return Number.isInteger(value);
}

/** What is wrong with each field, in words; empty when the form can be sent. */
export function formProblems(form: ImageForm, limits: RequestLimits): FormProblems {
  const problems: FormProblems = {};
  if (form.prompt.trim() === '') problems.prompt = 'Describe the image.';
  else if ([...form.prompt].length > limits.max_prompt_chars) {
    problems.prompt = `At most ${limits.max_prompt_chars} characters.`;
  }
  for (const field of ['width', 'height'] as const) {
    const side = form[field];
    if (!whole(side) || side < limits.side_step || side > limits.max_side || side % limits.side_step !== 0) {
      problems[field] = `A multiple of ${limits.side_step} from ${limits.side_step} to ${limits.max_side}.`;
    }
  }
  if (!whole(form.steps) || form.steps < 1 || form.steps > limits.max_steps) {
    problems.steps = `From 1 to ${limits.max_steps}.`;
  }
  if (!Number.isFinite(form.cfgScale) || form.cfgScale < 0 || form.cfgScale > limits.max_cfg_scale) {
    problems.cfgScale = `From 0 to ${limits.max_cfg_scale}.`;
  }
  if (!whole(form.count) || form.count < 1 || form.count > limits.max_count) {
    problems.count = `From 1 to ${limits.max_count}.`;
  }
  if (form.seedMode === 'fixed' && (!Number.isSafeInteger(form.seed) || form.seed < 0)) {
    problems.seed = 'A whole number, 0 or more.';
  }
  return problems;
}

export function toRequest(form: ImageForm): ImageRequest {
  return {
    prompt: form.prompt,
    negative_prompt: form.negativePrompt,
    width: form.width,
    height: form.height,
    steps: form.steps,
    cfg_scale: form.cfgScale,
    sampler: form.sampler === '' ? null : form.sampler,
    scheduler: form.scheduler === '' ? null : form.scheduler,
    // null: the engine picks a random seed and reports it with each image.
    seed: form.seedMode === 'fixed' ? form.seed : null,
    count: form.count,
    overrides: { clip_on_cpu: null, vae_on_cpu: null, vae_tiling: null },
  };
}

const STAGES: Record<Stage, string> = {
  queued: 'Waiting in the queue',
  loading: 'Loading the model',
  sampling: 'Sampling',
  decoding: 'Decoding',
  saving: 'Saving',
  done: 'Done',
};

export function stageLabel(stage: Stage): string {
  return STAGES[stage];
}

/** "1.2 s", "850 ms", "2 min 5 s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}
