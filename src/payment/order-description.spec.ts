import { DESCRIPTION_MAX_BYTES, orderDescription, truncateUtf8 } from './order-description';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('orderDescription (WeChat refuses 4-byte UTF-8 and more than 127 bytes in description)', () => {
  it('strips emoji (4-byte UTF-8) and the joiners/variation selectors they leave', () => {
    expect(orderDescription(['马克杯🎁☕️ 👨‍👩‍👧 限量'])).toBe('马克杯☕ 限量');
    expect(orderDescription(['马克杯🎁', 'T 恤'])).toBe('马克杯 等2件商品');
  });

  it('a name made only of emoji becomes 商品, not an empty description', () => {
    expect(orderDescription(['🎁🎉'])).toBe('商品');
  });

  it('cuts a long Chinese name to at most 127 bytes on a character boundary (not 127 UTF-16 units)', () => {
    const name = '杯'.repeat(127); // 381 bytes: the old .slice(0, 127) sent all of them
    const d = orderDescription([name]);
    expect(bytes(d)).toBeLessThanOrEqual(DESCRIPTION_MAX_BYTES);
    expect(d).toBe('杯'.repeat(42));
    expect(Buffer.from(d, 'utf8').toString('utf8')).toBe(d);
  });

  it('keeps the 等N件商品 suffix whole when the first name is cut', () => {
    const d = orderDescription(['杯'.repeat(100), 'b', 'c']);
    expect(d.endsWith(' 等3件商品')).toBe(true);
    expect(bytes(d)).toBeLessThanOrEqual(DESCRIPTION_MAX_BYTES);
  });

  it('truncateUtf8 never splits a multi-byte character', () => {
    expect(truncateUtf8('a杯杯', 5)).toBe('a杯');
    expect(truncateUtf8('abc', 127)).toBe('abc');
  });
});
