/**
 * store/atomic.ts batches: a large batch is made durable by one syncfs per
 * file system (`sync -f`) instead of an fsync per file, and falls back to an
 * fsync per file where `sync` is missing. Either way every file lands whole,
 * with its mode, and no temporary file is left.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SYNCFS_MIN, stageFilesBatch, syncFileSystems, type FileWrite } from "../../src/store/atomic.js";

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "pki-atomic-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function batch(dir: string, n: number): FileWrite[] {
  return Array.from({ length: n }, (_, i) => ({ path: path.join(dir, `f${i}.pem`), data: `file ${i}\n`.repeat(20), mode: i % 2 ? 0o600 : 0o644, exclusive: i % 3 === 0 }));
}

function expectLanded(dir: string, writes: FileWrite[]) {
  for (const w of writes) {
    expect(fs.readFileSync(w.path, "utf8")).toBe(w.data);
    expect(fs.statSync(w.path).mode & 0o777).toBe(w.mode);
  }
  expect(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
}

describe("stageFilesBatch", () => {
  it("syncs a large batch with `sync -f` and puts every file in place", async () => {
    expect(syncFileSystems([tmp()])).toBe(true);
    const dir = tmp();
    const writes = batch(dir, SYNCFS_MIN * 3);
    const staged = await stageFilesBatch(writes);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toHaveLength(writes.length);
    staged.commit(0, writes.length);
    expectLanded(dir, writes);
  });

  it("falls back to an fsync per file when `sync` cannot be run, with the same result", async () => {
    const dir = tmp();
    const writes = batch(dir, SYNCFS_MIN * 2);
    const saved = process.env.PATH;
    process.env.PATH = tmp(); // an empty directory: no `sync` to find
    try {
      expect(syncFileSystems([dir])).toBe(false);
      const staged = await stageFilesBatch(writes);
      staged.commit(0, writes.length);
    } finally {
      process.env.PATH = saved;
    }
    expectLanded(dir, writes);
  });

  it("a small batch is fsync'd file by file and lands the same way", async () => {
    const dir = tmp();
    const writes = batch(dir, 5);
    (await stageFilesBatch(writes)).commit(0, writes.length);
    expectLanded(dir, writes);
  });

  it("gives every file its exact mode whatever the umask (opened with it when the umask leaves it whole, else fchmod'd)", async () => {
    for (const mask of [0o022, 0o077, 0o000, 0o027]) {
      const saved = process.umask(mask);
      try {
        const dir = tmp();
        const writes = batch(dir, SYNCFS_MIN + 1);
        (await stageFilesBatch(writes)).commit(0, writes.length);
        expectLanded(dir, writes);
      } finally {
        process.umask(saved);
      }
    }
  });
});
