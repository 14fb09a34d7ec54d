import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

/** The data plane's Prometheus metrics, served on /metrics. Labels never carry keys or values. */

/** Upper bounds (seconds) of the call-duration histogram's buckets. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15] as const;

/** One operation's calls: counts by status, and the durations as histogram buckets (the last is +Inf). */
interface CallStats {
  readonly byStatus: Map<number, number>;
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

const DURATION = { name: 'santokit_bridge_request_duration_seconds', help: 'Duration of calls by operation' };

export class BridgeMetrics {
  readonly registry = new Registry();
  /**
   * Every call is counted here, in plain numbers: prom-client's own `inc`/`observe` hash and check
   * their labels on each call, which is a measurable share of a call's CPU. The registry reads
   * these at scrape time (`santokit_bridge_requests_total`, `…_request_duration_seconds`).
   */
  private readonly calls = new Map<string, CallStats>();
  readonly authFailures = new Counter({
    name: 'santokit_bridge_auth_failures_total',
    help: 'Refused credentials by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly servedEnvironments: Gauge;

  /** `servedCount` is read at each scrape. */
  constructor(servedCount: () => number = () => 0) {
    const calls = this.calls;
    new Counter({
      name: 'santokit_bridge_requests_total',
      help: 'Calls by operation and HTTP status',
      labelNames: ['op', 'status'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [op, stats] of calls) for (const [status, n] of stats.byStatus) this.inc({ op, status: String(status) }, n);
      },
    });
    // The histogram in prom-client's exposition form (cumulative `_bucket`s with `le`, `_sum`, `_count`).
    const duration = {
      ...DURATION,
      type: 'histogram',
      aggregator: 'sum',
      reset: () => calls.clear(),
      get: async () => ({ ...DURATION, type: 'histogram', aggregator: 'sum', values: durationValues(calls) }),
    };
    this.registry.registerMetric(duration as unknown as Metric);
    this.servedEnvironments = new Gauge({
      name: 'santokit_bridge_served_environments',
      help: 'Environments with a current release',
      registers: [this.registry],
      collect() {
        this.set(servedCount());
      },
    });
    // Standard names (process_resident_memory_bytes, nodejs_heap_size_used_bytes …); the scrape target tells the processes apart.
    collectDefaultMetrics({ register: this.registry });
  }

  /** Records one answered call: its operation (`none` before one is known), HTTP status and duration. */
  recordCall(op: string, status: number, seconds: number): void {
    let stats = this.calls.get(op);
    if (stats === undefined) this.calls.set(op, (stats = { byStatus: new Map(), buckets: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0, count: 0 }));
    stats.byStatus.set(status, (stats.byStatus.get(status) ?? 0) + 1);
    let b = 0;
    while (b < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[b]!) b++;
    stats.buckets[b]! += 1;
    stats.sum += seconds;
    stats.count += 1;
  }
}

function durationValues(calls: Map<string, CallStats>): Array<{ labels: Record<string, string | number>; value: number; metricName: string }> {
  const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
  for (const [op, stats] of calls) {
    let cumulative = 0;
    DURATION_BUCKETS.forEach((le, i) => {
      cumulative += stats.buckets[i]!;
      values.push({ labels: { le, op }, value: cumulative, metricName: `${DURATION.name}_bucket` });
    });
    values.push({ labels: { le: '+Inf', op }, value: stats.count, metricName: `${DURATION.name}_bucket` });
    values.push({ labels: { op }, value: stats.sum, metricName: `${DURATION.name}_sum` });
    values.push({ labels: { op }, value: stats.count, metricName: `${DURATION.name}_count` });
  }
  return values;
}
