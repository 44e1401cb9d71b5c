import { MemoryStore } from './memory-store';

describe('MemoryStore', () => {
  it('expires entries, sets only when absent and releases only its own lock', async () => {
    let now = 1000;
    const store = new MemoryStore(() => now);
    await store.set('a', '1', 100);
    expect(await store.get('a')).toBe('1');
    expect(await store.ttl('a')).toBe(100);
    now += 100;
    expect(await store.get('a')).toBeUndefined();

    expect(await store.setIfAbsent('lock', 'me', 50)).toBe(true);
    expect(await store.setIfAbsent('lock', 'you', 50)).toBe(false);
    expect(await store.deleteIfEquals('lock', 'you')).toBe(false);
    expect(await store.deleteIfEquals('lock', 'me')).toBe(true);
    expect(await store.setIfAbsent('lock', 'you', 50)).toBe(true);
  });
});
