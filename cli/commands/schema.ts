import type { Command } from 'commander';
import { Kinds, type Environment } from '../../core/api/resources.ts';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import type { KubeObject } from '../../core/kube/client.ts';
import { printJson, println } from '../output.ts';
import { outcomeError, requestEnvironmentChange } from '../release-requests.ts';
import { run } from '../runner.ts';
import { Session } from '../session.ts';
import { namespaceOfProject } from './project.ts';

export function registerSchemaCommands(program: Command): void {
  const schema = program.command('schema').description('the live schema of an environment');

  schema
    .command('drift')
    .description("compare the environment's databases with its current release now: exit 0 when they match, 2 when they drifted")
    .option('--project <project>', 'project (default: context)')
    .option('--env <env>', 'environment (default: context)')
    .option('--timeout <seconds>', 'how long to wait for the operator', '60')
    .action(
      run(async (flags) => {
        const session = new Session(flags);
        const project = session.requireProject();
        const envName = session.requireEnv();
        const client = await session.client();
        const namespace = await namespaceOfProject(client, project);
        const env = await client.find<Environment & KubeObject>(Kinds.Environment, envName, namespace);
        if (!env) throw new NotFoundError(`environment ${envName} does not exist in project ${project}`);
        const current = env.status?.currentRelease;
        if (!current) throw new ConflictError(`environment ${envName} serves no release yet: there is nothing to compare with`);
        const { outcome } = await requestEnvironmentChange(client, namespace, envName, { action: 'drift', release: current }, { setDesired: false, timeoutMs: Number(flags.timeout) * 1000 });
        if (outcome.outcome === 'Failed') throw outcomeError(outcome);
        const drift = outcome.drift ?? [];
        if (flags.json) printJson({ env: envName, release: current, drifted: drift.length > 0, differences: drift });
        else if (drift.length === 0) println(`environment ${envName} matches release ${current}`);
        else {
          println(`environment ${envName} drifted from release ${current}:`);
          for (const line of drift) println(`  - ${line}`);
        }
        return drift.length === 0 ? 0 : 2;
      }),
    );
}
