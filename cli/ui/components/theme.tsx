import { createContext, useContext, type ReactNode } from 'react';

/** Colour names the components use; `undefined` everywhere when colour is off (NO_COLOR). */
export type Tone = 'ok' | 'fail' | 'warn' | 'add' | 'change' | 'destructive' | 'accent' | 'muted';
const palette: Record<Tone, string> = { ok: 'green', fail: 'red', warn: 'yellow', add: 'green', change: 'yellow', destructive: 'red', accent: 'cyan', muted: 'gray' };

const ColorContext = createContext(true);

export function ColorProvider({ color, children }: { color: boolean; children: ReactNode }) {
  return <ColorContext.Provider value={color}>{children}</ColorContext.Provider>;
}

/** The Ink colour for a tone, or undefined when colour is off. */
export function useTone(): (tone: Tone) => string | undefined {
  const color = useContext(ColorContext);
  return (tone) => (color ? palette[tone] : undefined);
}
