import { Box, Static, Text } from 'ink';
import { useEffect, useState, useSyncExternalStore } from 'react';
import { formatElapsed } from '../pipeline-store.ts';
import type { HostRow as HostRowData, HostStage, InfraHostsStore } from './InfraHostsStore.ts';
import { Spinner } from './Spinner.tsx';
import { useTone } from './theme.tsx';

function Stage({ stage }: { stage: HostStage }) {
  const tone = useTone();
  const icon =
    stage.state === 'done' ? <Text color={tone('ok')}>✔</Text>
    : stage.state === 'failed' ? <Text color={tone('fail')}>✘</Text>
    : stage.state === 'skipped' ? <Text color={tone('muted')}>-</Text>
    : stage.state === 'running' ? <Spinner color={tone('accent')} />
    : <Text color={tone('muted')}>·</Text>;
  return (
    <Box gap={1}>
      {icon}
      <Text bold={stage.state === 'running'} {...(stage.state === 'pending' || stage.state === 'skipped' ? { color: tone('muted') } : {})}>
        {stage.name}
      </Text>
    </Box>
  );
}

/** One host: its label, a mark per stage (nothing after a failed one), the failure, the time. */
function HostRow({ row, labelWidth, elapsedMs }: { row: HostRowData; labelWidth: number; elapsedMs: number }) {
  const tone = useTone();
  const failedAt = row.stages.findIndex((s) => s.state === 'failed');
  const shown = failedAt === -1 ? row.stages : row.stages.slice(0, failedAt + 1);
  return (
    <Box gap={2}>
      <Text bold>{row.label.padEnd(labelWidth)}</Text>
      <Box gap={1}>
        {shown.map((s) => (
          <Stage key={s.name} stage={s} />
        ))}
        {row.failure ? <Text color={tone('fail')}>{`${row.failure.code}${row.failure.message ? `: ${row.failure.message}` : ''}`}</Text> : null}
        <Text color={tone('muted')}>{formatElapsed(elapsedMs)}</Text>
      </Box>
    </Box>
  );
}

/**
 * The hosts of one `stk infra up`: a row per host. Settled hosts go into `<Static>` (printed
 * once, in the order they settled); only the hosts still at work redraw, with a running clock.
 */
export function InfraHosts({ title, store, clock = Date.now }: { title: string; store: InfraHostsStore; clock?: () => number }) {
  const { finished, live, labelWidth, done } = useSyncExternalStore(store.subscribe, store.getSnapshot);
  // Redraw the live rows' clocks four times a second; the rows themselves change only by the store.
  const [, setTick] = useState(0);
  useEffect(() => {
    if (done) return;
    const t = setInterval(() => setTick((n) => n + 1), 250);
    return () => clearInterval(t);
  }, [done]);
  const header = { key: '__title', title } as const;
  return (
    <>
      <Static items={[header, ...finished]}>
        {(item) =>
          'title' in item ? (
            <Text key={item.key} bold>
              {item.title}
            </Text>
          ) : (
            <HostRow key={item.key} row={item} labelWidth={labelWidth} elapsedMs={item.elapsedMs} />
          )
        }
      </Static>
      {live.map((row) => (
        <HostRow key={row.key} row={row} labelWidth={labelWidth} elapsedMs={clock() - store.startedAt} />
      ))}
    </>
  );
}
