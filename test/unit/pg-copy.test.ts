// The binary COPY format of one text column (src/store/pg-copy.ts), apart
// from any server: the lines come out as stored, each with "\n", and
// anything but a whole stream of one non-null column is refused.
import { describe, expect, it } from "vitest";
import { PkiError } from "../../src/core/errors.js";
import { linesOfBinaryCopy } from "../../src/store/pg-copy.js";

const SIG = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");
const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const header = (ext = Buffer.alloc(0), flags = 0) => Buffer.concat([SIG, i32(flags), i32(ext.length), ext]);
const row = (v: string | null, fields = 1) => Buffer.concat([i16(fields), v === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(v)), Buffer.from(v)]), ...Array.from({ length: fields - 1 }, () => Buffer.concat([i32(1), Buffer.from("x")]))]);
const stream = (rows: Buffer[], h = header()) => Buffer.concat([h, ...rows, i16(-1)]);

function refusal(buf: Buffer): string {
  try {
    linesOfBinaryCopy(buf);
  } catch (e) {
    expect(e).toBeInstanceOf(PkiError);
    expect((e as PkiError).message).not.toMatch(/\n/);
    return (e as PkiError).message;
  }
  throw new Error("expected a refusal");
}

describe("linesOfBinaryCopy", () => {
  it("gives each value followed by a newline, bytes as stored (tabs, UTF-8, empty values)", () => {
    const lines = ["V\t301231235959Z\t\t0A\tunknown\t/CN=a", "R\t301231235959Z\t250101000000Z,keyCompromise\t0B\tunknown\t/O=Zoë/CN=服务器", ""];
    const out = linesOfBinaryCopy(stream(lines.map((l) => row(l))));
    expect(out.toString("utf8")).toBe(lines.map((l) => l + "\n").join(""));
  });

  it("no rows: an empty buffer; a header extension is skipped", () => {
    expect(linesOfBinaryCopy(stream([])).length).toBe(0);
    expect(linesOfBinaryCopy(stream([row("a")], header(Buffer.from("ext!")))).toString()).toBe("a\n");
  });

  it("reads only the first len bytes of a larger buffer", () => {
    const s = stream([row("x"), row("yz")]);
    const big = Buffer.concat([s, Buffer.from("garbage after the stream")]);
    expect(linesOfBinaryCopy(big, s.length).toString()).toBe("x\nyz\n");
  });

  it("refuses what is not a whole stream of one non-null text column", () => {
    expect(refusal(Buffer.from("V\t301231235959Z\n"))).toMatch(/signature/);
    expect(refusal(stream([row("a")]).subarray(0, 25))).toMatch(/ends/);
    expect(refusal(Buffer.concat([header(), row("a")]))).toMatch(/trailer/);
    expect(refusal(stream([row("a", 2)]))).toMatch(/2 columns/);
    expect(refusal(stream([row(null)]))).toMatch(/NULL/);
    expect(refusal(Buffer.concat([stream([row("a")]), Buffer.from("x")]))).toMatch(/after its trailer/);
    expect(refusal(stream([row("a")], header(Buffer.alloc(0), 0x10000)))).toMatch(/OIDs/);
    const cut = stream([row("abcdef")]);
    cut.writeInt32BE(1000, header().length + 2); // a length past the end
    expect(refusal(cut)).toMatch(/inside a row/);
  });
});
