// sign-csr's name plan (src/ca/sign-csr.ts planNames) on the index text:
// named certificates found through index.meta, same-CN certificates by a
// scan that parses only the lines with a wanted CN; both in index order, as
// when every line was parsed.
import { describe, expect, it } from "vitest";
import { PkiError } from "../../src/core/errors.js";
import { formatIndex, type IndexEntry } from "../../src/core/index-format.js";
import { parseDn } from "../../src/core/names.js";
import { planNames } from "../../src/ca/sign-csr.js";

const NOW = new Date("2026-06-01T00:00:00Z");
const LATER = new Date("2030-01-01T00:00:00Z");
const EARLIER = new Date("2026-01-01T00:00:00Z");
const e = (serial: string, subject: string, over: Partial<IndexEntry> = {}): IndexEntry => ({ status: "V", expires: LATER, serial, file: "unknown", subject, ...over });

const index: IndexEntry[] = [
  e("0A", "/O=Acme/CN=web1"),
  e("0B", "/O=Acme/CN=WEB1 "), // same CN, caseIgnoreMatch
  e("0C", "/O=Acme/CN=web1", { status: "R", revokedAt: EARLIER }),
  e("0D", "/O=Acme/CN=web1", { expires: EARLIER }), // expired
  e("0E", "/CN=other/O=Acme"),
  e("0F", "/CN=web1/O=Acme/CN=db"), // the last CN counts: db
  e("10", "/O=Acme/CN=db"),
  e("11", "/O=Acme/CN=\\xC3\\xA9t\\xC3\\xA9"),
];
const buf = Buffer.from(formatIndex(index));
const meta = new Map<string, { name?: string }>([
  ["0E", { name: "gateway" }],
  ["0A", { name: "gateway" }],
  ["0C", { name: "gateway" }], // revoked: not a holder
  ["10", { name: "db" }],
  ["99", { name: "gateway" }], // in meta, not in the index
]);
const item = (dn: string, name?: string) => ({ name, subject: parseDn(dn) });
const serials = (es: readonly IndexEntry[]) => es.map((x) => x.serial);

describe("planNames on the index text", () => {
  it("same-CN live certificates, per request, in index order (revoked, expired and other CNs left out)", () => {
    const p = planNames([item("CN=web1"), item("CN=db"), item("CN=été"), item("O=no cn")], buf, meta, false, NOW);
    expect(p.supersede).toEqual([]);
    expect(p.duplicates.map((d) => [d.item, d.entry.serial])).toEqual([
      [0, "0A"],
      [0, "0B"],
      [1, "0F"],
      [1, "10"],
      [2, "11"],
    ]);
    expect(p.duplicates[0]!.entry).toEqual(index[0]);
  });

  it("a name holding a live certificate: NAME_EXISTS naming the first in index order; --replace supersedes them all, which are then no duplicates", () => {
    let err: unknown;
    try {
      planNames([item("CN=web1", "gateway")], buf, meta, false, NOW);
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(PkiError);
    expect((err as PkiError).code).toBe("NAME_EXISTS");
    expect((err as PkiError).message).toContain('"gateway" already holds a valid certificate (serial 0A)');
    const p = planNames([item("CN=web1", "gateway")], buf, meta, true, NOW);
    expect(serials(p.supersede)).toEqual(["0A", "0E"]);
    expect(p.duplicates.map((d) => d.entry.serial)).toEqual(["0B"]);
  });

  it("an empty index, no names, no CN: nothing", () => {
    expect(planNames([item("CN=web1", "gateway")], Buffer.alloc(0), meta, false, NOW)).toEqual({ supersede: [], duplicates: [] });
    expect(planNames([item("O=x")], buf, new Map(), false, NOW)).toEqual({ supersede: [], duplicates: [] });
  });

  it("a damaged line is refused when it is one the plan reads, as a parse of the whole index did", () => {
    const bad = Buffer.from(formatIndex(index) + "V\tnot-a-time\t\t12\tunknown\t/CN=web1\n");
    expect(() => planNames([item("CN=web1")], bad, meta, false, NOW)).toThrow(/index.txt line 9: bad expiry time/);
  });
});
