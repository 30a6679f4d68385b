// Read by vite-plugin-svelte and svelte-check. Svelte 5 understands TypeScript in
// <script lang="ts"> natively, so no preprocessor is needed.
/** @type {import('svelte/compiler').CompileOptions & Record<string, unknown>} */
export default {
  compilerOptions: {
    runes: true,
  },
};
