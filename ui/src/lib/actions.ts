// Svelte actions. The CSP forbids style attributes, so dynamic values (bar widths)
// go through the CSSOM as custom properties, which the CSP allows.
import type { Action } from 'svelte/action';

export type CssVars = Record<string, string | number>;

function setVars(node: HTMLElement | SVGElement, vars: CssVars): void {
  for (const [name, value] of Object.entries(vars)) {
    node.style.setProperty(name, String(value));
  }
}

/** `use:cssVars={{ '--fill': 0.42 }}` sets CSS custom properties on the node. */
export const cssVars: Action<HTMLElement | SVGElement, CssVars> = (node, vars) => {
  setVars(node, vars);
  return {
    update(next: CssVars) {
      setVars(node, next);
    },
  };
};
