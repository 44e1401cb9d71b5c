import { ConfigValidationError, loadConfig } from '../../src/config/load-config';

/** The message of the ConfigValidationError loadConfig throws for `env` (fails the test when it does not throw one). */
export function problemsOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigValidationError);
    return (error as Error).message;
  }
  throw new Error('expected loadConfig to fail');
}
