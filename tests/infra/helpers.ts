import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../core/log.ts';
import { DigitalOceanProvider, type DigitalOceanOptions } from '../../operator/infra/digitalocean.ts';
import type { DoSimulator } from '../support/do-simulator.ts';

/** A logger at debug level whose JSON lines the test can read back. */
export function capturingLogger(name: string): { logger: Logger; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return { logger: createLogger(name, 'debug', sink), text: () => chunks.join('') };
}

/** A provider pointed at the simulator that records its waits instead of sleeping. */
export function simulatedProvider(
  sim: DoSimulator,
  overrides: Partial<DigitalOceanOptions> = {},
): { provider: DigitalOceanProvider; waits: number[]; log: () => string } {
  const waits: number[] = [];
  const { logger, text } = capturingLogger('do-test');
  const provider = new DigitalOceanProvider({
    token: sim.token,
    baseUrl: sim.url,
    logger,
    sleep: async (ms) => {
      waits.push(ms);
    },
    random: () => 1,
    ...overrides,
  });
  return { provider, waits, log: text };
}
