import { Box, Text } from 'ink';
import type { PlannedConnection } from '../../../core/api/resources.ts';
import { classifyStep, stepMarker } from '../plan-format.ts';
import { useTone } from './theme.tsx';

/** Plans per connection as a diff: `+` additions, `~` changes, `!` destructive steps (with hazards); SQL when asked. */
export function PlanDiff({ plans, showSql }: { plans: readonly PlannedConnection[]; showSql: boolean }) {
  const tone = useTone();
  return (
    <Box flexDirection="column">
      {plans.map((plan) => (
        <Box key={plan.connection} flexDirection="column">
          <Text bold>
            plan {plan.connection}: {plan.steps.length + (plan.omittedSteps ?? 0) === 0 ? 'no changes' : `${plan.steps.length + (plan.omittedSteps ?? 0)} step(s)`}
            {plan.omittedSteps ? ` (${plan.omittedSteps} not shown)` : ''}
          </Text>
          {plan.steps.map((step, i) => {
            const kind = classifyStep(step);
            return (
              <Box key={i} flexDirection="column" paddingLeft={2}>
                <Text color={tone(kind)} bold={kind === 'destructive'}>
                  {stepMarker[kind]} {step.description}
                  {kind === 'destructive' ? `  [destructive${step.hazards.length ? `: ${step.hazards.join(', ')}` : ''}]` : ''}
                </Text>
                {showSql ? (
                  <Box paddingLeft={2}>
                    <Text color={tone('muted')}>{step.sql}</Text>
                  </Box>
                ) : null}
              </Box>
            );
          })}
        </Box>
      ))}
    </Box>
  );
}
