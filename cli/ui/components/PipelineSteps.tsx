import { Box, Static, Text } from 'ink';
import { useEffect, useState, useSyncExternalStore } from 'react';
import { formatElapsed, type PipelineRow, type PipelineStore } from '../pipeline-store.ts';
import { Spinner } from './Spinner.tsx';
import { useTone } from './theme.tsx';

function StepRow({ row }: { row: PipelineRow }) {
  const tone = useTone();
  const icon =
    row.state === 'Succeeded' ? <Text color={tone('ok')}>✔</Text>
    : row.state === 'Failed' ? <Text color={tone('fail')}>✘</Text>
    : row.state === 'Skipped' ? <Text color={tone('muted')}>-</Text>
    : row.state === 'Running' || row.state === 'Waiting' ? <Spinner color={tone('accent')} />
    : <Text color={tone('muted')}>·</Text>;
  const detail = [row.state === 'Failed' && row.reason ? row.reason : undefined, row.message].filter(Boolean).join(': ');
  return (
    <Box gap={1}>
      {icon}
      <Text bold={row.state === 'Running'}>{row.label}</Text>
      {detail ? <Text color={row.state === 'Failed' ? tone('fail') : tone('muted')}>{detail}</Text> : null}
      {row.state !== 'Pending' ? <Text color={tone('muted')}>{formatElapsed(row.elapsedMs)}</Text> : null}
    </Box>
  );
}

/**
 * The pipeline of one request: finished steps in `<Static>` (printed once, never redrawn), live
 * steps below with a spinner on the running one, and a waiting row until the operator answers.
 */
export function PipelineSteps({ title, store, startedAt }: { title: string; store: PipelineStore; startedAt: number }) {
  const { finished, live, outcome } = useSyncExternalStore(store.subscribe, store.getSnapshot);
  const tone = useTone();
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (outcome) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [outcome]);
  const header = { key: '__title', label: title } as const;
  return (
    <>
      <Static items={[header, ...finished]}>
        {(item) => ('state' in item ? <StepRow key={item.key} row={item} /> : <Text key={item.key} bold>{item.label}</Text>)}
      </Static>
      {live.map((row) => (
        <StepRow key={row.key} row={row} />
      ))}
      {!outcome && live.length === 0 ? <StepRow row={{ key: '__wait', label: 'waiting for the operator', state: 'Waiting', elapsedMs: now - startedAt }} /> : null}
      {outcome ? <Text color={/fail|refused/i.test(outcome) ? tone('fail') : tone('ok')}>{outcome}</Text> : null}
    </>
  );
}
