import { describe, expect, it } from 'vitest';
import { renderMarkdown } from './markdown';

describe('renderMarkdown', () => {
  it('renders the usual markdown', () => {
    const html = renderMarkdown('**bold** and `code`\n\n- one\n- two\n\n```\nfn main() {}\n```');
    expect(html).toContain('<strong>bold</strong>');
    expect(html).toContain('<code>code</code>');
    expect(html).toContain('<li>one</li>');
    expect(html).toContain('<pre><code>fn main() {}');
  });

  it('removes scripts, handlers, javascript links and inline styles', () => {
    const html = renderMarkdown(
      '<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a><span style="color:red">y</span>',
    );
    expect(html).not.toMatch(/script|onerror|javascript:|style=/i);
    expect(html).toContain('y');
  });

  it('keeps plain text as text', () => {
    expect(renderMarkdown('a < b & c')).toContain('a &lt; b &amp; c');
  });
});
