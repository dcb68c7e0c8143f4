import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { atomicWriteFile, decodePng, encodePng, nodeFs, type FsOps } from '@sbm/backend-node';
import { expectThrowsSbm } from '@sbm/test-harness';

const fresh = () => mkdtempSync(join(tmpdir(), 'sbm-atomic-test-'));

describe('atomicWriteFile', () => {
  it('writes bytes and strings (UTF-8), creating the folder, and leaves no temporary file', async () => {
    const dir = join(fresh(), 'a', 'b');
    await atomicWriteFile(join(dir, 'x.bin'), new Uint8Array([1, 2, 3]));
    await atomicWriteFile(join(dir, 'y.txt'), 'σ = 1');
    expect([...readFileSync(join(dir, 'x.bin'))]).toEqual([1, 2, 3]);
    expect(readFileSync(join(dir, 'y.txt'), 'utf8')).toBe('σ = 1');
    expect(readdirSync(dir).sort()).toEqual(['x.bin', 'y.txt']);
  });

  it('a failed rename leaves the old file as it was and removes the temporary', async () => {
    const dir = fresh();
    const path = join(dir, 'f.txt');
    writeFileSync(path, 'old');
    const failing: FsOps = { ...nodeFs, rename: () => Promise.reject(new Error('disk on fire')) };
    await expect(atomicWriteFile(path, 'new', failing)).rejects.toMatchObject({
      code: 'IO_ERROR',
      message: expect.stringMatching(/atomicWriteFile: renaming onto .*f\.txt failed.*disk on fire/),
    });
    expect(readFileSync(path, 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['f.txt']);
  });

  it('rejects a missing path or data of the wrong type, naming the argument', async () => {
    await expect(atomicWriteFile('', 'x')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { argument: 'path' },
    });
    await expect(atomicWriteFile(join(fresh(), 'z'), 5 as unknown as string)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { argument: 'data' },
    });
  });
});

describe('encodePng', () => {
  it('round-trips gray, RGB and RGBA pixels through decodePng', () => {
    for (const channels of [1, 3, 4] as const) {
      const pixels = Uint8Array.from({ length: 3 * 2 * channels }, (_, i) => (i * 37) % 256);
      const back = decodePng(encodePng(pixels, 3, 2, channels));
      expect(back).toEqual({ width: 3, height: 2, channels, pixels });
    }
  });
  it('rejects pixels that do not fill width × height × channels', () => {
    expectThrowsSbm(() => encodePng(new Uint8Array(5), 3, 2, 1), 'INVALID_SHAPE', /encodePng/);
  });
});
