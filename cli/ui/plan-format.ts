import type { PlannedConnection } from '../../core/api/resources.ts';

/** How a plan step reads in a diff: an addition, a change, or a destructive step. */
export type StepKind = 'add' | 'change' | 'destructive';

export function classifyStep(step: PlannedConnection['steps'][number]): StepKind {
  if (step.destructive) return 'destructive';
  const sql = step.sql.trim().toUpperCase();
  if (/^CREATE\b/.test(sql) || /^ALTER TABLE\b[^;]*\bADD\b/.test(sql) || /^(ADD|CREATE)\b/i.test(step.description)) return 'add';
  return 'change';
}

export const stepMarker: Record<StepKind, string> = { add: '+', change: '~', destructive: '!' };

/** Whether any connection's plan has a destructive step. */
export function hasDestructiveSteps(plans: readonly PlannedConnection[] | undefined): boolean {
  return (plans ?? []).some((p) => p.steps.some((s) => s.destructive));
}
