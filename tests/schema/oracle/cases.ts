import type { Pair } from './generator.ts';

export interface NamedCase {
  readonly title: string;
  /** the issue class (issue 15) this case stands for */
  readonly cls: string;
  readonly pair: Pair;
  readonly expect: 'applied' | 'refused-or-applied' | 'refused';
  /** why it is skipped (the engine on this branch fails it); undefined: it runs */
  readonly skip?: string;
}

export const NAMED_CASES: readonly NamedCase[] = [];
