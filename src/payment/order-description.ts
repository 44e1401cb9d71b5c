/**
 * WeChat Pay's `description` (商品描述): at most 127 bytes of UTF-8, and no 4-byte UTF-8 characters
 * (emoji and other characters outside the Basic Multilingual Plane): WeChat answers PARAM_ERROR to
 * either. Built from product names, which the console lets an operator type freely.
 */
export const DESCRIPTION_MAX_BYTES = 127;

/** Characters WeChat refuses in `description`: anything outside the BMP (4 bytes in UTF-8). */
const OUTSIDE_BMP = /[\u{10000}-\u{10FFFF}]/gu;
/** Variation selectors and zero-width joiners left behind by stripped emoji. */
const EMOJI_LEFTOVERS = /\u200D|\uFE0E|\uFE0F|\u20E3/g;
/** Control characters (a newline in a product name is no use on a WeChat payment page). */
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001F\u007F]/g;

/** Removes what WeChat refuses and collapses the whitespace it leaves. */
export function sanitizeDescription(text: string): string {
  return text.replace(OUTSIDE_BMP, '').replace(EMOJI_LEFTOVERS, '').replace(CONTROLS, ' ').replace(/\s+/g, ' ').trim();
}

/** Cuts to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let bytes = 0;
  let out = '';
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > maxBytes) break;
    bytes += size;
    out += char;
  }
  return out;
}

/**
 * `名称` for one line, `名称 等N件商品` for several; the suffix is kept whole when the first name has
 * to be shortened. A name made only of emoji falls back to `商品`.
 */
export function orderDescription(names: string[]): string {
  const first = sanitizeDescription(names[0] ?? '') || '商品';
  const suffix = names.length > 1 ? ` 等${names.length}件商品` : '';
  const room = DESCRIPTION_MAX_BYTES - Buffer.byteLength(suffix, 'utf8');
  return truncateUtf8(first, room).trimEnd() + suffix;
}
