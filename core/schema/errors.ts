import { ConflictError } from '../errors.ts';
import { REFUSING_HAZARDS, type HazardKind } from './hazards.ts';

/** A destructive step that the caller did not force or allow. */
export interface BlockedStep {
  /** 1-based, as in the rendered plan */
  readonly number: number;
  readonly description: string;
  readonly hazards: readonly { readonly kind: HazardKind; readonly message: string }[];
}

/** The plan has destructive steps and the caller neither forced nor allowed them: nothing ran. */
export class DestructiveChangeError extends ConflictError {
  readonly connection: string;
  readonly steps: readonly BlockedStep[];

  constructor(connection: string, steps: readonly BlockedStep[]) {
    const lines = steps.map((s) => `  - step ${s.number}, ${s.description}: ${s.hazards.map((h) => `${h.kind} (${h.message})`).join('; ')}`);
    const kinds = [...new Set(steps.flatMap((s) => s.hazards.map((h) => h.kind)))].sort();
    const impossible = kinds.filter((k) => REFUSING_HAZARDS.has(k));
    super(`connection ${connection}: ${steps.length} ${impossible.length > 0 ? 'step' : 'destructive step'}${steps.length === 1 ? '' : 's'} refused, nothing was applied:\n${lines.join('\n')}`, {
      reason: impossible.length > 0 ? 'PlanRefused' : 'DestructiveChange',
      hint:
        impossible.length > 0
          ? `Postgres would refuse ${impossible.length === 1 && steps.length === 1 ? 'this step' : 'these steps'} (${impossible.join(', ')}), with or without force: change the declaration or the database as each reason says, then plan again`
          : `review the plan, then apply with force (--force) or allow these hazards by name: ${kinds.join(', ')}`,
    });
    this.connection = connection;
    this.steps = steps;
  }
}

/** The database changed between plan and apply: the plan no longer describes what it would do. */
export class PlanStaleError extends ConflictError {
  readonly connection: string;
  readonly plannedHash: string;
  readonly liveHash: string;

  constructor(connection: string, plannedHash: string, liveHash: string) {
    super(`connection ${connection}: the schema changed since the plan was made (planned against ${plannedHash.slice(0, 12)}, found ${liveHash.slice(0, 12)}); nothing was applied`, {
      reason: 'PlanStale',
      hint: 'plan again against the current database, review it, then apply the new plan',
      // planning again is the fix, so a reconcile may retry on its own
      retryable: true,
    });
    this.connection = connection;
    this.plannedHash = plannedHash;
    this.liveHash = liveHash;
  }
}
