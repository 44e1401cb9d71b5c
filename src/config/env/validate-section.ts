import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';

export type RawEnv = Record<string, string | undefined>;

/** One problem with one environment variable, phrased for the operator reading the start-up log. */
export interface EnvProblem {
  variable: string;
  reason: string;
}

function flatten(errors: ValidationError[]): EnvProblem[] {
  const out: EnvProblem[] = [];
  for (const error of errors) {
    for (const message of Object.values(error.constraints ?? {})) {
      out.push({ variable: error.property, reason: message });
    }
    out.push(...flatten(error.children ?? []));
  }
  return out;
}

/**
 * Validates the variables declared on `schema` (a class-validator class whose property names are the
 * variable names). Empty strings count as unset, as most process managers cannot express "unset".
 * Values stay strings here; each area converts them once validation has passed.
 */
export function validateSection<T extends object>(
  schema: new () => T,
  env: RawEnv,
): { values: T; problems: EnvProblem[] } {
  const plain: RawEnv = {};
  for (const key of Object.keys(new schema())) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') plain[key] = value.trim();
  }
  // class-validator needs own properties to exist; the schema declares them with `= undefined`.
  const values = plainToInstance(schema, plain, { enableImplicitConversion: false });
  const problems = flatten(validateSync(values, { forbidUnknownValues: false }));
  return { values, problems };
}

export function parseList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}
