import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The data plane's Prometheus metrics, served on /metrics. Labels never carry keys or values. */
export class BridgeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'santokit_bridge_requests_total',
    help: 'Calls by operation and HTTP status',
    labelNames: ['op', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'santokit_bridge_request_duration_seconds',
    help: 'Duration of calls by operation',
    labelNames: ['op'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'santokit_bridge_auth_failures_total',
    help: 'Refused credentials by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly servedEnvironments: Gauge;

  /** `servedCount` is read at each scrape. */
  constructor(servedCount: () => number = () => 0) {
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
}
