import { describe, expect, it } from 'vitest';
import { fakeDiffusionFacts, fakeHubFiles, fakeLlamaFacts } from './fixtures';
import {
  guessKind,
  guessRole,
  isCompanion,
  nameFromPath,
  normalizeRepo,
  quantTag,
  quantizationOf,
  REPO_SHAPE,
  sortHubFiles,
} from './models';

describe('model names', () => {
  it('suggests the file name without .gguf, from a path or a URL', () => {
    expect(nameFromPath('Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf')).toBe('Meta-Llama-3.1-8B-Instruct-Q4_K_M');
    expect(nameFromPath('sub/dir/model.GGUF')).toBe('model');
    expect(nameFromPath('https://example.com/m/Mistral%207B-Q5_K_M.gguf?download=true')).toBe('Mistral 7B-Q5_K_M');
    expect(nameFromPath('')).toBe('');
  });

  it('reads the quantization a file name announces', () => {
    expect(quantTag('Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf')).toBe('Q4_K_M');
    expect(quantTag('model-IQ4_XS.gguf')).toBe('IQ4_XS');
    expect(quantTag('mmproj-model-f16.gguf')).toBe('F16');
    expect(quantTag('Qwen2.5-7B-Instruct-q8_0-00001-of-00002.gguf')).toBe('Q8_0');
    expect(quantTag('README.md')).toBeNull();
  });

  it('guesses the role of a second file and the kind of a model', () => {
    expect(guessRole('mmproj-Qwen2-VL-7B-Instruct-f16.gguf')).toBe('mmproj');
    expect(guessRole('ae.safetensors.gguf')).toBe('vae');
    expect(guessRole('sdxl_vae-f16.gguf')).toBe('vae');
    expect(guessRole('t5xxl_fp16.gguf')).toBe('text_encoder');
    expect(guessKind('second-state/stable-diffusion-v1-5-GGUF/sd-v1-5-Q8_0.gguf')).toBe('diffusion');
    expect(guessKind('city96/FLUX.1-dev-gguf/flux1-dev-Q4_0.gguf')).toBe('diffusion');
    expect(guessKind('bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/x.gguf')).toBe('llm');
  });

  it('accepts owner/name or a pasted Hub address', () => {
    expect(normalizeRepo('  bartowski/Qwen2.5-7B-Instruct-GGUF ')).toBe('bartowski/Qwen2.5-7B-Instruct-GGUF');
    expect(normalizeRepo('https://huggingface.co/bartowski/Qwen2.5-7B-Instruct-GGUF/tree/main')).toBe(
      'bartowski/Qwen2.5-7B-Instruct-GGUF',
    );
    expect(REPO_SHAPE.test('owner/name')).toBe(true);
    expect(REPO_SHAPE.test('just-a-name')).toBe(false);
    expect(REPO_SHAPE.test('a/b/c')).toBe(false);
  });
});

describe('sortHubFiles', () => {
  it('puts weights first by size, then companion files, then the rest by name', () => {
    const files = sortHubFiles(fakeHubFiles('bartowski/Qwen2-VL-7B-Instruct-GGUF'));
    const paths = files.map((file) => file.path);
    expect(paths[0]).toBe('Qwen2-VL-7B-Instruct-IQ2_M.gguf');
    expect(paths.indexOf('Qwen2-VL-7B-Instruct-f16.gguf')).toBe(9);
    expect(paths[10]).toBe('mmproj-Qwen2-VL-7B-Instruct-f16.gguf');
    expect(paths.slice(11)).toEqual(['.gitattributes', 'Qwen2-VL-7B-Instruct.imatrix', 'README.md']);
    const weights = files.slice(0, 10).map((file) => file.size_bytes);
    expect(weights).toEqual([...weights].sort((a, b) => a - b));
    expect(isCompanion('mmproj-x-f16.gguf')).toBe(true);
    expect(isCompanion('model-Q4_K_M.gguf')).toBe(false);
  });
});

describe('quantizationOf', () => {
  it("is the converter's file type, else the tensor type with the most bytes", () => {
    expect(quantizationOf(fakeLlamaFacts())).toBe('Q4_K_M');
    expect(quantizationOf(fakeDiffusionFacts())).toBe('Q8_0');
    expect(quantizationOf(null)).toBeNull();
  });
});
