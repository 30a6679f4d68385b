import { describe, expect, it } from 'vitest';
import { MODEL_PLACEHOLDER, curlSnippet, pythonSnippet, snippet } from './endpoint';

const URL = 'http://127.0.0.1:8434/v1';

describe('endpoint snippets', () => {
  it('curl posts a chat completion to the endpoint, naming the model', () => {
    const text = curlSnippet(URL, 'qwen2-5-7b-instruct-q4-k-m');
    expect(text.split('\n')[0]).toBe('curl http://127.0.0.1:8434/v1/chat/completions \\');
    expect(text).toContain(`"model":"qwen2-5-7b-instruct-q4-k-m"`);
    expect(text).toContain("-H 'Content-Type: application/json'");
  });

  it('quotes the body for the shell even when the model id has a quote', () => {
    const text = curlSnippet(URL, "it's");
    expect(text).toContain(`-d '{"model":"it'\\''s"`);
  });

  it('Python uses the openai package with the endpoint as base_url', () => {
    const text = pythonSnippet(URL, 'meta-llama-3-1-8b-instruct-q4-k-m');
    expect(text).toContain('from openai import OpenAI');
    expect(text).toContain('base_url="http://127.0.0.1:8434/v1"');
    expect(text).toContain('model="meta-llama-3-1-8b-instruct-q4-k-m"');
  });

  it('names a placeholder when there is no model yet', () => {
    expect(snippet('python', URL, null)).toContain(`model="${MODEL_PLACEHOLDER}"`);
    expect(snippet('curl', URL, null)).toContain(`"model":"${MODEL_PLACEHOLDER}"`);
  });
});
