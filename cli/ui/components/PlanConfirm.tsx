import { Box, Text, useInput } from 'ink';
import { useState } from 'react';
import type { PlannedConnection } from '../../../core/api/resources.ts';
import { Confirm } from './Confirm.tsx';
import { PlanDiff } from './PlanDiff.tsx';
import { useTone } from './theme.tsx';

/** A plan with its destructive steps, `s` to show or hide the SQL, and the question. */
export function PlanConfirm({ plans, question, onAnswer }: { plans: readonly PlannedConnection[]; question: string; onAnswer: (yes: boolean) => void }) {
  const tone = useTone();
  const [showSql, setShowSql] = useState(false);
  useInput((input) => {
    if (input === 's') setShowSql((v) => !v);
  });
  return (
    <Box flexDirection="column">
      <PlanDiff plans={plans} showSql={showSql} />
      <Text color={tone('muted')}>s: {showSql ? 'hide' : 'show'} SQL</Text>
      <Confirm question={question} onAnswer={onAnswer} />
    </Box>
  );
}
