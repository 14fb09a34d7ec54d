import type { ResizeState, ResizeStep } from './plan.ts';
import type { CloudHost, HostAction } from './provider.ts';

/**
 * The resize record the InfraHost keeps between passes (annotation `santokit.io/resize`): whether
 * we powered the host off for a resize, the last action we started, and a size the provider
 * refused. plan.ts decides the next step from it; the external client runs that step.
 */
export interface ResizeRecord {
  readonly inProgress: boolean;
  readonly actionId?: string;
  readonly failedSize?: string;
}

export function parseResize(text: string | undefined): ResizeRecord {
  if (text === undefined || text === '') return { inProgress: false };
  try {
    const v = JSON.parse(text) as Partial<ResizeRecord> | null;
    return {
      inProgress: v?.inProgress === true,
      ...(typeof v?.actionId === 'string' && /^\d+$/.test(v.actionId) ? { actionId: v.actionId } : {}),
      ...(typeof v?.failedSize === 'string' ? { failedSize: v.failedSize } : {}),
    };
  } catch {
    return { inProgress: false };
  }
}

export function formatResize(r: ResizeRecord): string {
  return JSON.stringify({ inProgress: r.inProgress, ...(r.actionId === undefined ? {} : { actionId: r.actionId }), ...(r.failedSize === undefined ? {} : { failedSize: r.failedSize }) });
}

/** The record to keep after `step` ran (`action`: the action the step started, if any). */
export function nextResizeRecord(host: CloudHost, step: ResizeStep, state: ResizeState, action?: HostAction): ResizeRecord {
  const keep = (inProgress: boolean, a?: HostAction): ResizeRecord => ({
    inProgress,
    ...(a === undefined ? {} : { actionId: a.id }),
    ...(state.failedSize === undefined ? {} : { failedSize: state.failedSize }),
  });
  switch (step.kind) {
    case 'shutdown':
    case 'powerOff':
    case 'powerOn':
      return keep(true, action);
    case 'resize':
      return action === undefined ? { inProgress: true, failedSize: step.size } : keep(true, action);
    case 'failed':
      return { inProgress: true, failedSize: step.size };
    case 'none':
      return host.status === 'active' ? { inProgress: false, ...(state.failedSize === undefined ? {} : { failedSize: state.failedSize }) } : keep(state.inProgress, state.action);
    case 'wait':
      return keep(state.inProgress, state.action);
  }
}
