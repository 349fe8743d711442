/**
 * store/ca-dir.ts readIndexBuffer: index.txt is read once per command. A
 * command that resolves its targets and then reads the index again under the
 * lock gets the bytes of the first read back while the file is the same file
 * (device, inode, size, mtime, ctime), and the file's new bytes as soon as
 * anything of it changed: a rename, an edit in place of the same size with
 * its mtime put back, a removal. index.meta likewise: parsed once, each
 * caller its own Map, an append seen at once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { CaDir } from "../../src/store/ca-dir.js";
import { DirStore } from "../../src/store/dir-store.js";
import { tmpdir } from "../helpers.js";

const LINE_A = "V\t351231235959Z\t\t0A\tunknown\t/CN=a\n";
const LINE_B = "V\t351231235959Z\t\t0B\tunknown\t/CN=b\n";

describe("index.txt read once per command", () => {
  it("an unchanged index.txt: the second read (under the lock too) returns the bytes of the first", async () => {
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, "index.txt"), LINE_A);
    const store = new DirStore(dir);
    const first = await store.indexText();
    expect(await store.indexText()).toBe(first);
    await store.locked("test", async (tx) => {
      expect(await tx.indexText()).toBe(first);
    });
  });

  it("a replaced index.txt (rename) is read anew", async () => {
    const dir = tmpdir();
    const p = path.join(dir, "index.txt");
    fs.writeFileSync(p, LINE_A);
    const store = new DirStore(dir);
    expect((await store.indexText()).toString()).toBe(LINE_A);
    fs.writeFileSync(p + ".new", LINE_B);
    fs.renameSync(p + ".new", p);
    await store.locked("test", async (tx) => {
      expect((await tx.indexText()).toString()).toBe(LINE_B);
    });
  });

  it("an edit in place of the same size, with its mtime put back, is read anew (ctime)", async () => {
    const d = new CaDir(tmpdir());
    fs.writeFileSync(d.indexPath, LINE_A);
    const st = fs.statSync(d.indexPath);
    expect(d.readIndexBuffer().toString()).toBe(LINE_A);
    await new Promise((r) => setTimeout(r, 20)); // past the file system's timestamp granularity
    const fd = fs.openSync(d.indexPath, "r+");
    fs.writeSync(fd, LINE_B, 0);
    fs.closeSync(fd);
    fs.utimesSync(d.indexPath, st.atime, st.mtime);
    expect(d.readIndexBuffer().toString()).toBe(LINE_B);
  });

  it("a removed index.txt reads as empty", () => {
    const d = new CaDir(tmpdir());
    fs.writeFileSync(d.indexPath, LINE_A);
    expect(d.readIndexBuffer().toString()).toBe(LINE_A);
    fs.rmSync(d.indexPath);
    expect(d.readIndexBuffer().length).toBe(0);
  });
});

describe("index.meta parsed once per command", () => {
  it("an unchanged index.meta: the same entries, each caller its own Map; an append is seen", () => {
    const d = new CaDir(tmpdir());
    fs.writeFileSync(d.metaPath, "0A\tclient\ta\n");
    const first = d.readMeta();
    const second = d.readMeta();
    expect(second).not.toBe(first);
    expect(second.get("0A")).toBe(first.get("0A")); // the parse of the first call, copied
    first.delete("0A");
    expect(d.readMeta().get("0A")?.name).toBe("a");
    fs.appendFileSync(d.metaPath, "0B\tserver\tb\n");
    expect([...d.readMeta().keys()]).toEqual(["0A", "0B"]);
    fs.rmSync(d.metaPath);
    expect(d.readMeta().size).toBe(0);
  });
});
