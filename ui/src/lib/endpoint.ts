// Client snippets for the Switchyard endpoint: the address and a model id come
// from the engine; these only put them where curl and the `openai` package want them.

export type SnippetLanguage = 'curl' | 'python';

/** What a snippet names when the endpoint answers for no model yet. */
export const MODEL_PLACEHOLDER = 'MODEL_ID';

/** A shell-safe single-quoted word. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** `url` is the endpoint's base (`http://127.0.0.1:8434/v1`). */
export function curlSnippet(url: string, model: string | null): string {
  const body = JSON.stringify({
    model: model ?? MODEL_PLACEHOLDER,
    messages: [{ role: 'user', content: 'Hello!' }],
  });
  return [
    `curl ${url.replace(/\/+$/, '')}/chat/completions \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d ${shellQuote(body)}`,
  ].join('\n');
}

export function pythonSnippet(url: string, model: string | null): string {
  return [
    'from openai import OpenAI',
    '',
    '# The endpoint asks for no key; the client wants one anyway.',
    `client = OpenAI(base_url=${JSON.stringify(url)}, api_key="switchyard")`,
    'reply = client.chat.completions.create(',
    `    model=${JSON.stringify(model ?? MODEL_PLACEHOLDER)},`,
    '    messages=[{"role": "user", "content": "Hello!"}],',
    ')',
    'print(reply.choices[0].message.content)',
  ].join('\n');
}

export function snippet(language: SnippetLanguage, url: string, model: string | null): string {
  return language === 'curl' ? curlSnippet(url, model) : pythonSnippet(url, model);
}
