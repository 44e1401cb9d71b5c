// Every test sees UTC, whatever the machine's zone; money and bill dates depend on it.
process.env.TZ = 'UTC';
