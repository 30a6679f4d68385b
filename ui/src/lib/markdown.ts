// Markdown from a model's answer as safe HTML: `marked` parses, DOMPurify removes
// anything active (scripts, event handlers, javascript: links) and every `style`
// (the CSP refuses inline styles anyway; removing them keeps the console quiet).
// Neither library evaluates code, so both work under the window's strict CSP.
import DOMPurify from 'dompurify';
import { Marked } from 'marked';

const marked = new Marked({ gfm: true, breaks: true, async: false });

/** Safe HTML for `{@html}`; raw HTML in the text is sanitized, not trusted. */
export function renderMarkdown(text: string): string {
  const html = marked.parse(text, { async: false });
  return DOMPurify.sanitize(html, {
    FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'img'],
    FORBID_ATTR: ['style', 'class', 'id'],
  });
}
