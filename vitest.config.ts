import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // e2e files start their own redis-server and keygate processes; two cores, so keep parallelism modest.
    maxWorkers: 3,
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
