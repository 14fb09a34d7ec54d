import { defineConfig } from 'vitest/config';

/**
 * The real-node suite (tests/node/): the image built here, hack/node.sh's single-node cluster,
 * the chart installed with Helm. Its own config, so it runs alone and never inside the normal
 * integration project:  npx vitest run --config tests/node/vitest.config.ts  (npm run test:node).
 * Needs root. Cold (nothing cached) its beforeAll builds kubelet, kube-proxy, kube-scheduler,
 * Helm and the images: up to ~30 min on 2 cores; warm, the whole file takes a few minutes.
 */
export default defineConfig({
  root: import.meta.dirname + '/../..',
  test: {
    name: 'node',
    include: ['tests/node/**/*.test.ts'],
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 45 * 60_000,
  },
});
