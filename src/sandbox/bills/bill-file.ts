import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { SandboxControlError } from '../sandbox-errors';

/** A gzip bill file checked by readGzipBillFile. */
export interface GzipBillFile {
  /** Its real path (every symlink resolved), to serve it from. */
  realPath: string;
  /** Its path relative to DATA_DIR, with '/' separators: what answers may show. */
  path: string;
  /** SHA-1 (hex) of the uncompressed content, as WeChat's hash_value is. */
  hash: string;
  /** Uncompressed size. */
  bytes: number;
}

/**
 * Checks a gzip trade bill the control API registers, and reads it through once (SHA-1 and size of
 * the uncompressed content). Only files inside the app's DATA_DIR (`dataDir`; the sandbox's own
 * directory is DATA_DIR/sandbox) are accepted: the path is resolved against DATA_DIR and through
 * every symlink, and must still be inside it. Errors (SandboxControlError, 400) name only what the
 * caller sent (or a path relative to DATA_DIR), never an absolute path: a path outside DATA_DIR is
 * refused before the disk is touched, so the answer says nothing about what exists out there, and fs
 * errors (which carry the resolved absolute path) are reduced to their code.
 */
export async function readGzipBillFile(dataDir: string, requested: string): Promise<GzipBillFile> {
    const shown = JSON.stringify(requested.length > 200 ? `${requested.slice(0, 200)}…` : requested);
    const outsideError = () =>
      new SandboxControlError(`${shown} is outside DATA_DIR: only bill files inside the data directory can be registered (give a path relative to DATA_DIR)`);
    const escapes = (rel: string) => rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
    const root = resolve(dataDir);
    let realRoot: string;
    try {
      realRoot = await realpath(root);
    } catch {
      throw new SandboxControlError('the data directory (DATA_DIR) does not exist');
    }
    const lexical = resolve(root, requested);
    // Absolute paths may name DATA_DIR as configured or as resolved (DATA_DIR itself behind a symlink).
    if (escapes(relative(root, lexical)) && escapes(relative(realRoot, lexical))) throw outsideError();
    let real: string;
    try {
      real = await realpath(lexical);
    } catch {
      throw new SandboxControlError(`${shown} does not exist in DATA_DIR (relative paths are resolved inside DATA_DIR)`);
    }
    const rel = relative(realRoot, real);
    // A symlink inside DATA_DIR that leads out: refused like any other outside path, target not named.
    if (escapes(rel)) throw outsideError();
    const fsCode = (error: unknown) => (error as NodeJS.ErrnoException).code ?? 'unreadable';
    try {
      if (!(await stat(real)).isFile()) throw new SandboxControlError(`${shown} is not a regular file`);
      const magic = Buffer.alloc(2);
      const handle = await open(real, 'r');
      try {
        await handle.read(magic, 0, 2, 0);
      } finally {
        await handle.close();
      }
      if (magic[0] !== 0x1f || magic[1] !== 0x8b) throw new SandboxControlError(`${shown} is not a gzip file (a .gz trade bill is expected)`);
    } catch (error) {
      if (error instanceof SandboxControlError) throw error;
      throw new SandboxControlError(`cannot read ${shown} (${fsCode(error)})`);
    }
    const hash = createHash('sha1');
    let bytes = 0;
    try {
      await pipeline(createReadStream(real), createGunzip(), async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) {
          hash.update(chunk);
          bytes += chunk.length;
        }
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new SandboxControlError(`${shown} is not a valid gzip file${code ? ` (${code})` : ''}`);
    }
    return { realPath: real, path: rel.split(sep).join('/'), hash: hash.digest('hex'), bytes };
}
