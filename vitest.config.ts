import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Files run one after another: integration files start operator processes against the same
    // cluster, and the machine has two cores. Tests use unique names, so order never matters.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 240_000,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['core/**/*.test.ts', 'operator/**/*.test.ts', 'cli/**/*.test.{ts,tsx}', 'config/**/*.test.ts'] },
      },
      {
        extends: true,
        // The DigitalOcean simulator and a real sshd: no cluster needed.
        test: { name: 'infra', include: ['tests/infra/**/*.test.ts'] },
      },
      {
        extends: true,
        // One local control plane and one Postgres serve the whole run (tests/support/global-setup.ts).
        test: { name: 'integration', include: ['tests/**/*.test.ts'], exclude: ['tests/infra/**', 'tests/node/**'], globalSetup: ['tests/support/global-setup.ts'] },
      },
    ],
  },
});
