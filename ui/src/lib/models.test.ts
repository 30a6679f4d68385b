import { describe, expect, it } from 'vitest';
import { fakeDiffusionFacts, fakeHubFiles, fakeLlamaFacts } from './fixtures';
import { baseName, isModelFile, normalizeRepo, quantizationOf, REPO_SHAPE } from './models';

// What a file name suggests (name, kind, role, quantization) and the listing's order
// are the engine's: crates/models/src/guess.rs tests them.
describe('model names', () => {
  it('shows the last part of a path or address', () => {
    expect(baseName('sub/dir/model.gguf')).toBe('model.gguf');
    expect(baseName('https://example.com/m/model-Q5_K_M.gguf?download=true')).toBe('model-Q5_K_M.gguf');
    expect(baseName('')).toBe('');
  });

  it('takes a file with a role from the engine for one it can run', () => {
    const files = fakeHubFiles('bartowski/Qwen2-VL-7B-Instruct-GGUF');
    const runnable = files.filter(isModelFile).map((file) => file.path);
    expect(runnable).toContain('mmproj-Qwen2-VL-7B-Instruct-f16.gguf');
    expect(runnable).not.toContain('README.md');
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

describe('quantizationOf', () => {
  it("is the converter's file type, else the tensor type with the most bytes", () => {
    expect(quantizationOf(fakeLlamaFacts())).toBe('Q4_K_M');
    expect(quantizationOf(fakeDiffusionFacts())).toBe('Q8_0');
    expect(quantizationOf(null)).toBeNull();
  });
});
