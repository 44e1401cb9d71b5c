import { ValueTransformer } from 'typeorm';

/**
 * SQLite hands datetimes back as 'YYYY-MM-DD HH:MM:SS.SSS' text in UTC; MySQL (timezone 'Z') as Date.
 * Entities use this so both drivers yield a Date.
 */
export const utcDate: ValueTransformer = {
  to: (value: Date | null | undefined) => value,
  from: (value: Date | string | null) => {
    if (value === null || value === undefined) return value;
    if (value instanceof Date) return value;
    return new Date(value.includes('T') ? value : value.replace(' ', 'T') + 'Z');
  },
};
