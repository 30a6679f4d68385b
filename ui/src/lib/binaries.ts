// Names of binary kinds, builds and setup steps as people read them. No engine logic:
// which build is chosen, and why, comes from the engine's status and log lines.
import type { BinaryKind } from '../bindings/BinaryKind';
import type { BinaryStep } from '../bindings/BinaryStep';
import type { Variant } from '../bindings/Variant';

const PROGRAMS: Record<BinaryKind, string> = { llama_server: 'llama-server', diffusion: 'sd' };
const VARIANTS: Record<Variant, string> = {
  cuda: 'CUDA',
  vulkan: 'Vulkan',
  metal: 'Metal',
  cpu_avx512: 'CPU (AVX-512)',
  cpu_avx2: 'CPU (AVX2)',
  cpu: 'CPU',
};
const STEPS: Record<BinaryStep, string> = {
  plan: 'plan',
  download: 'download',
  verify: 'verify',
  extract: 'unpack',
  basic_test: 'basic test',
  real_test: 'real test',
  cache: 'cache',
  choose: 'choice',
};

/** The program's own name: "llama-server", "sd". */
export const programLabel = (kind: BinaryKind): string => PROGRAMS[kind] ?? kind;

/** A build as people say it; a user-supplied binary (no variant) is "Your own build". */
export const variantLabel = (variant: Variant | null): string =>
  variant === null ? 'Your own build' : (VARIANTS[variant] ?? variant);

export const stepLabel = (step: BinaryStep): string => STEPS[step] ?? step;
