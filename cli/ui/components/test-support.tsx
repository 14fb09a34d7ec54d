import { render } from 'ink-testing-library';
import type { ReactElement } from 'react';
import { ColorProvider } from './theme.tsx';

/** Renders without colour (frames compare as plain text) and lets effects settle between keys. */
export function renderPlain(tree: ReactElement) {
  return render(<ColorProvider color={false}>{tree}</ColorProvider>);
}

export const tick = (ms = 30) => new Promise((r) => setTimeout(r, ms));
