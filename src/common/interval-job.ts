import { Logger } from '@nestjs/common';
import type { SchedulerRegistry } from '@nestjs/schedule';

/**
 * Registers `run` every `intervalMs` under `name` (skipping a tick while the previous run is still
 * busy) and returns the function that unregisters it. No scheduler (tests with schedules off): nothing runs.
 */
export function scheduleInterval(
  scheduler: SchedulerRegistry | undefined,
  name: string,
  intervalMs: number,
  run: () => Promise<unknown>,
  logger: Logger,
): () => void {
  if (!scheduler) return () => undefined;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    run()
      .catch((error: Error) => logger.error(`${name} failed: ${error.message}`))
      .finally(() => (busy = false));
  }, intervalMs);
  timer.unref();
  scheduler.addInterval(name, timer);
  return () => {
    try {
      scheduler.deleteInterval(name);
    } catch {
      // not registered
    }
  };
}
