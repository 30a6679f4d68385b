// Display helpers for raw JSON: big objects must not freeze the window.

/** Arrays longer than this are cut in displayed JSON. */
export const JSON_ARRAY_LIMIT = 100;

/** Nesting deeper than this is shown as a marker (a guard, not a real limit). */
const MAX_DEPTH = 64;

/**
 * A copy of `value` for display: every array longer than `limit` keeps its first
 * `limit` items followed by a string marker `"… N more"`. Only kept items are
 * visited, so the work is bounded by what is shown, not by the size of the input.
 */
export function truncateArrays(value: unknown, limit = JSON_ARRAY_LIMIT, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '… nested too deep';
  if (Array.isArray(value)) {
    const kept = value.slice(0, limit).map((item) => truncateArrays(item, limit, depth + 1));
    if (value.length > limit) kept.push(`… ${value.length - limit} more`);
    return kept;
  }
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) copy[key] = truncateArrays(item, limit, depth + 1);
  return copy;
}

/** Pretty-printed JSON with long arrays cut, for a `<pre>`. */
export function displayJson(value: unknown, limit = JSON_ARRAY_LIMIT): string {
  return JSON.stringify(truncateArrays(value, limit), null, 2) ?? 'undefined';
}
