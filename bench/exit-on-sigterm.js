// Preloaded (node --require) into the app when a benchmark profiles it (BENCH_CPU_PROF): on SIGTERM the
// process exits normally, so that `--cpu-prof` writes its profile (a signal death would lose it).
'use strict';
process.once('SIGTERM', () => process.exit(0));
