import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['core/**/*.test.ts', 'operator/**/*.test.ts', 'cli/**/*.test.{ts,tsx}', 'tests/**/*.test.ts'],
    // One local control plane and one Postgres serve the whole run (tests/support/global-setup.ts).
    globalSetup: ['tests/support/global-setup.ts'],
    // Files run one after another: several start operator processes against the same cluster,
    // and the machine has two cores. Tests inside a file use unique names, so order never matters.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 240_000,
    reporters: ['default'],
  },
});
