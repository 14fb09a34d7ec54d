import type { Pair } from './generator.ts';

export interface NamedCase {
  readonly title: string;
  /** the issue class (issue 15) this case stands for */
  readonly cls: string;
  readonly pair: Pair;
  /**
   * `applied`: the issue says the engine must carry it out; `refused`: it must refuse at plan
   * time; `either`: applying correctly or refusing at plan time with a reason both pass.
   */
  readonly expect: 'applied' | 'either' | 'refused';
  /** why it is skipped (the engine on this branch fails it); undefined: it runs */
  readonly skip?: string;
}

export const NAMED_CASES: readonly NamedCase[] = [];
