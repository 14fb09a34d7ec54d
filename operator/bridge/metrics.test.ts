import { describe, expect, it } from 'vitest';
import { BridgeMetrics } from './metrics.ts';

describe('BridgeMetrics', () => {
  it('exposes recorded calls as a counter by operation and status and a cumulative duration histogram', async () => {
    const metrics = new BridgeMetrics();
    metrics.recordCall('select', 200, 0.003);
    metrics.recordCall('select', 200, 0.0025);
    metrics.recordCall('select', 404, 1);
    metrics.recordCall('none', 401, 20);
    const text = await metrics.registry.metrics();
    const lines = text.split('\n');
    expect(lines).toContain('# TYPE santokit_bridge_requests_total counter');
    expect(lines).toContain('santokit_bridge_requests_total{op="select",status="200"} 2');
    expect(lines).toContain('santokit_bridge_requests_total{op="select",status="404"} 1');
    expect(lines).toContain('santokit_bridge_requests_total{op="none",status="401"} 1');
    expect(lines).toContain('# TYPE santokit_bridge_request_duration_seconds histogram');
    // A value on a bound falls in that bucket (le = less or equal); buckets are cumulative.
    expect(lines).toContain('santokit_bridge_request_duration_seconds_bucket{le="0.001",op="select"} 0');
    expect(lines).toContain('santokit_bridge_request_duration_seconds_bucket{le="0.0025",op="select"} 1');
    expect(lines).toContain('santokit_bridge_request_duration_seconds_bucket{le="0.005",op="select"} 2');
    expect(lines).toContain('santokit_bridge_request_duration_seconds_bucket{le="1",op="select"} 3');
    expect(lines).toContain('santokit_bridge_request_duration_seconds_bucket{le="+Inf",op="select"} 3');
    expect(lines).toContain('santokit_bridge_request_duration_seconds_count{op="select"} 3');
    expect(lines.find((l) => l.startsWith('santokit_bridge_request_duration_seconds_sum{op="select"}'))).toMatch(/ 1\.0055\d*$/);
    // Past the last bound: only +Inf counts it.
    expect(lines).toContain('santokit_bridge_request_duration_seconds_bucket{le="15",op="none"} 0');
    expect(lines).toContain('santokit_bridge_request_duration_seconds_bucket{le="+Inf",op="none"} 1');
  });

  it('counts keep growing across scrapes (a scrape resets nothing)', async () => {
    const metrics = new BridgeMetrics();
    metrics.recordCall('insert', 200, 0.01);
    await metrics.registry.metrics();
    metrics.recordCall('insert', 200, 0.01);
    const lines = (await metrics.registry.metrics()).split('\n');
    expect(lines).toContain('santokit_bridge_requests_total{op="insert",status="200"} 2');
    expect(lines).toContain('santokit_bridge_request_duration_seconds_count{op="insert"} 2');
  });
});
