import { describe, expect, it, vi } from 'vitest';
import type { PlannedConnection } from '../../../core/api/resources.ts';
import { Confirm } from './Confirm.tsx';
import { PlanConfirm } from './PlanConfirm.tsx';
import { PlanDiff } from './PlanDiff.tsx';
import { renderPlain, tick } from './test-support.tsx';

const plans: PlannedConnection[] = [
  {
    connection: 'main',
    text: '',
    steps: [
      { description: 'add column users.age', sql: 'ALTER TABLE "users" ADD COLUMN "age" integer;', destructive: false, hazards: [] },
      { description: 'change type of users.score', sql: 'ALTER TABLE "users" ALTER COLUMN "score" TYPE bigint;', destructive: false, hazards: [] },
      { description: 'drop column users.name', sql: 'ALTER TABLE "users" DROP COLUMN "name";', destructive: true, hazards: ['DataLoss'] },
    ],
  },
  { connection: 'audit', text: '', steps: [] },
];

describe('PlanDiff', () => {
  it('marks additions +, changes ~ and destructive steps ! with their hazards', () => {
    const { lastFrame } = renderPlain(<PlanDiff plans={plans} showSql={false} />);
    expect(lastFrame()).toMatchInlineSnapshot(`
      "plan main: 3 step(s)
        + add column users.age
        ~ change type of users.score
        ! drop column users.name  [destructive: DataLoss]
      plan audit: no changes"
    `);
  });
});

describe('Confirm', () => {
  it('answers yes on y', async () => {
    const onAnswer = vi.fn();
    const { stdin, lastFrame } = renderPlain(<Confirm question="Promote?" onAnswer={onAnswer} />);
    await tick();
    stdin.write('y');
    await tick();
    expect(onAnswer).toHaveBeenCalledWith(true);
    expect(lastFrame()).toBe('? Promote? yes');
  });

  it('takes no as the default on Enter', async () => {
    const onAnswer = vi.fn();
    const { stdin } = renderPlain(<Confirm question="Promote?" onAnswer={onAnswer} />);
    await tick();
    stdin.write('\r');
    await tick();
    expect(onAnswer).toHaveBeenCalledWith(false);
  });
});

describe('PlanConfirm', () => {
  it('shows the SQL on s and answers on n', async () => {
    const onAnswer = vi.fn();
    const { stdin, lastFrame } = renderPlain(<PlanConfirm plans={plans} question="Apply these destructive steps?" onAnswer={onAnswer} />);
    await tick();
    expect(lastFrame()).not.toContain('DROP COLUMN');
    stdin.write('s');
    await tick();
    expect(lastFrame()).toMatchInlineSnapshot(`
      "plan main: 3 step(s)
        + add column users.age
          ALTER TABLE "users" ADD COLUMN "age" integer;
        ~ change type of users.score
          ALTER TABLE "users" ALTER COLUMN "score" TYPE bigint;
        ! drop column users.name  [destructive: DataLoss]
          ALTER TABLE "users" DROP COLUMN "name";
      plan audit: no changes
      s: hide SQL
      ? Apply these destructive steps? (y/N)"
    `);
    stdin.write('n');
    await tick();
    expect(onAnswer).toHaveBeenCalledWith(false);
  });
});
