import { IsOptional } from 'class-validator';
import { IsIntString, IsNumberString } from './validators';

/** Settings of the built-in WeChat sandbox (ignored in live mode). Property names are the variable names. */
export class SandboxEnv {
  /** Port of `npm run sandbox` (the sandbox alone). Default 3100. */
  @IsOptional()
  @IsIntString(0, 65535)
  SANDBOX_PORT?: string = undefined;

  /** Divides every sandbox delay (notification retries, refund completion). Default 1; tests use e.g. 1000. */
  @IsOptional()
  @IsNumberString(0.001, 1_000_000)
  SANDBOX_TIME_SCALE?: string = undefined;

  /** JSAPI payment directories registered with the sandbox merchant (comma-separated URL prefixes). */
  @IsOptional()
  SANDBOX_PAY_DIRECTORIES?: string = undefined;
}
