/** Unit specs live beside the code (src/**\/*.spec.ts); end-to-end specs under test/ (*.e2e-spec.ts). */
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }],
};
const common = {
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform,
  setupFiles: ['<rootDir>/test/setup-env.js'],
};

module.exports = {
  maxWorkers: 2,
  // e2e tests start whole applications (and, on MariaDB, fresh databases).
  testTimeout: 60_000,
  projects: [
    { ...common, displayName: 'unit', rootDir: '.', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'e2e',
      rootDir: '.',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
    },
  ],
};
