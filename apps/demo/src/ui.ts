/*
 * DOM helpers both panels build their controls with (src/digits/panel.ts, src/playground/panel.ts).
 */

/** How a panel reports a failed action: shows it and returns the text shown. */
export type ShowError = (context: string, e: unknown) => string;

/** An element with string attributes and children, in one expression. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

export function labelled(text: string, input: HTMLElement): HTMLLabelElement {
  return el('label', {}, `${text} `, input);
}

export function numberInput(id: string, value: number, attrs: Record<string, string> = {}): HTMLInputElement {
  return el('input', { id, type: 'number', value: String(value), ...attrs });
}
