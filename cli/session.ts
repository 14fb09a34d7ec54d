import { loadConfig, usePrecompiledValidators, type ConfigSpec } from '../core/config.ts';
import { UsageError } from '../core/errors.ts';
import { KubeClient } from '../core/kube/client.ts';
import { contextPath, readContext } from './context-file.ts';
import { precompiledValidators } from './precompiled-config.ts';

usePrecompiledValidators(precompiledValidators);

const dns1123 = { pattern: '^[a-z]([-a-z0-9]*[a-z0-9])?$', maxLength: 50 };

/** What every command may take from flags, environment or `.stk/context.json` (in that order). */
export const cliConfigSpec = {
  project: { type: 'string', flag: 'project', env: 'STK_PROJECT', description: 'project', schema: dns1123 },
  env: { type: 'string', flag: 'env', env: 'STK_ENV', description: 'environment', schema: { ...dns1123, maxLength: 40 } },
  connection: { type: 'string', flag: 'connection', env: 'STK_CONNECTION', description: 'connection name', schema: { ...dns1123, maxLength: 40 } },
  kubeContext: { type: 'string', flag: 'context', env: 'STK_KUBE_CONTEXT', description: 'kubeconfig context' },
  kubeconfig: { type: 'string', flag: 'kubeconfig', env: 'KUBECONFIG', description: 'kubeconfig file' },
} as const satisfies ConfigSpec;

export type GlobalFlags = Partial<Record<'project' | 'env' | 'connection' | 'context' | 'kubeconfig', string>> & { json?: boolean };

/** Resolved settings and a lazily made Kubernetes client for one command. */
export class Session {
  readonly settings;
  readonly json: boolean;
  private kube: KubeClient | undefined;

  constructor(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env) {
    const fileName = contextPath();
    this.settings = loadConfig(cliConfigSpec, { flags, env, file: { ...readContext() }, fileName });
    this.json = Boolean(flags.json);
  }

  /** The Kubernetes client, made on first use. */
  async client(): Promise<KubeClient> {
    this.kube ??= await KubeClient.load({
      ...(this.settings.kubeconfig ? { kubeconfig: this.settings.kubeconfig } : {}),
      ...(this.settings.kubeContext ? { context: this.settings.kubeContext } : {}),
    });
    return this.kube;
  }

  /** The project, or a usage error saying how to pass one. */
  requireProject(): string {
    if (this.settings.project) return this.settings.project;
    throw new UsageError('no project given', { hint: 'pass --project <name> or run `stk context set --project <name>`' });
  }

  requireEnv(): string {
    if (this.settings.env) return this.settings.env;
    throw new UsageError('no environment given', { hint: 'pass --env <name> or run `stk context set --env <name>`' });
  }
}
