import { describeDown } from './health.controller';

describe('describeDown', () => {
  it('names the dependencies that are down', () => {
    expect(describeDown({ status: 'error', error: { database: { status: 'down' } } })).toBe('database is down');
    expect(describeDown({ status: 'error', error: { database: { status: 'down' }, redis: { status: 'down' } } })).toBe(
      'database and redis are down',
    );
    expect(
      describeDown({ status: 'error', error: { database: { status: 'down' }, redis: { status: 'down' }, disk: { status: 'down' } } }),
    ).toBe('database, redis and disk are down');
  });

  it('says why when nothing is reported down', () => {
    expect(describeDown({ status: 'shutting_down', error: {} })).toBe('the application is shutting down');
    expect(describeDown({ status: 'error' })).toBe('a dependency is down');
  });
});
