import { createHash } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';

/** The sizes WeChat's avatar URLs end with (…/46, …/64, …/96, …/132; 0 = the largest, 640). */
export const AVATAR_SIZES: Record<string, number> = { '0': 640, '46': 46, '64': 64, '96': 96, '132': 132 };

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

/**
 * A small generated avatar (PNG, truecolour): a symmetric 5×5 pattern in a colour derived from `seed`,
 * on a light background, like the identicons many sites give users without a photo. The same seed
 * always gives the same picture.
 */
export function avatarPng(seed: string, size: number): Buffer {
  const hash = createHash('sha256').update(seed).digest();
  const fg = hslToRgb(hash.readUInt16BE(0) % 360, 0.55, 0.5);
  const bg: [number, number, number] = [242, 242, 242];
  // 5 columns mirrored around the middle one: 15 cells decide the pattern.
  const on = (col: number, row: number) => ((hash[2 + row * 3 + Math.min(col, 4 - col)] ?? 0) & 1) === 1;
  const margin = Math.floor(size / 10);
  const cell = (size - 2 * margin) / 5;
  const raw = Buffer.alloc((size * 3 + 1) * size);
  for (let y = 0; y < size; y++) {
    const rowStart = y * (size * 3 + 1);
    raw[rowStart] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const cx = Math.floor((x - margin) / cell);
      const cy = Math.floor((y - margin) / cell);
      const inside = cx >= 0 && cx < 5 && cy >= 0 && cy < 5 && on(cx, cy);
      const [r, g, b] = inside ? fg : bg;
      const at = rowStart + 1 + x * 3;
      raw[at] = r;
      raw[at + 1] = g;
      raw[at + 2] = b;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: truecolour
  header[10] = 0; // compression
  header[11] = 0; // filter
  header[12] = 0; // no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
