import { Box, Text, useInput } from 'ink';
import { useState, type ReactNode } from 'react';
import { useTone } from './theme.tsx';

/** A yes/no question: `y` or `n`; Enter takes the default (no); Esc says no. */
export function Confirm({ question, onAnswer, children }: { question: string; onAnswer: (yes: boolean) => void; children?: ReactNode }) {
  const tone = useTone();
  const [answer, setAnswer] = useState<boolean | undefined>();
  useInput((input, key) => {
    if (answer !== undefined) return;
    const yes = input.toLowerCase() === 'y' ? true : input.toLowerCase() === 'n' || key.return || key.escape ? false : undefined;
    if (yes === undefined) return;
    setAnswer(yes);
    onAnswer(yes);
  });
  return (
    <Box flexDirection="column">
      {children}
      <Text>
        <Text color={tone('warn')}>?</Text> {question} <Text color={tone('muted')}>{answer === undefined ? '(y/N)' : answer ? 'yes' : 'no'}</Text>
      </Text>
    </Box>
  );
}
