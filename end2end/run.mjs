// Runs the browser tests with node's test runner (one file at a time: each
// starts its own server and browser, and the machine has two cores).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', join(here, 'tests')], {
  stdio: 'inherit',
  cwd: here,
});
process.exit(r.status ?? 1);
