/**
 * Reading what the user hands in (CSRs, certificate files, name lists,
 * passphrase files): with a bound, before anything is read whole.
 *
 * Checking a file's size and then reading all of it trusts the size: a
 * device (/dev/zero, /dev/urandom) reports 0 bytes and never ends, and a
 * file can grow between the stat and the read. So the file is opened once,
 * its type checked on the open descriptor (fstat: no swap after the check),
 * and at most `max + 1` bytes are read: one byte more than allowed is the
 * proof that the input is too large, and nothing beyond it is ever read.
 *
 * Accepted: regular files, and pipes (a FIFO, `/dev/stdin`, a shell's
 * `<(...)`), which are how secrets are passed without a file on disk; the
 * bound holds for them too. Refused: directories, devices and sockets.
 */
import * as fs from "node:fs";
import { PkiError } from "../core/errors.js";

/** Largest input file pki reads (CSRs, certificates, name lists): 1 MiB. */
export const MAX_INPUT = 1024 * 1024;

/** How an input is named in errors: its path, or a phrase when the path itself may be a secret. */
export interface InputLabel {
  /** "CSR file", "certificate file" */
  what: string;
  /** shown after `what`; omitted for secrets (a passphrase typed where its file name belongs) */
  shown?: string;
}

function describe(l: InputLabel): string {
  return l.shown === undefined ? l.what : `${l.what} ${l.shown}`;
}

function kindOf(st: fs.Stats): string | null {
  if (st.isFile() || st.isFIFO()) return null;
  if (st.isDirectory()) return "a directory";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Read at most `max` bytes of the file at `p`. Over `max`: INPUT_TOO_LARGE,
 * after reading `max + 1` bytes and no more.
 */
export function readBounded(p: string, max: number = MAX_INPUT, label: InputLabel = { what: "input file", shown: p }): Buffer {
  const name = describe(label);
  let pre: fs.Stats;
  try {
    pre = fs.statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new PkiError("NOT_FOUND", `${name} does not exist: check the path`);
    throw new PkiError("IO_ERROR", `cannot read ${name}: ${code === "EACCES" ? "permission denied" : code}`);
  }
  // refuse before open(): opening a device may itself have effects, and a FIFO
  // check on the descriptor follows below
  const pk = kindOf(pre);
  if (pk) throw new PkiError("BAD_INPUT", `${name} is ${pk}, not a file: give a regular file (or - for standard input)`);
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_RDONLY | (fs.constants.O_NOCTTY ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PkiError("IO_ERROR", `cannot read ${name}: ${code === "EACCES" ? "permission denied" : code}`);
  }
  try {
    const st = fs.fstatSync(fd);
    const k = kindOf(st);
    if (k) throw new PkiError("BAD_INPUT", `${name} is ${k}, not a file: give a regular file (or - for standard input)`);
    if (st.isFile() && st.size > max) throw tooLarge(name, max, st.size);
    const buf = Buffer.alloc(max + 1);
    let off = 0;
    let waited = 0;
    while (off < buf.length) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, off, buf.length - off, null);
      } catch (e) {
        // a pipe inherited in non-blocking mode: wait for its writer (bounded)
        if ((e as NodeJS.ErrnoException).code === "EAGAIN" && waited < 60_000) {
          sleep(10);
          waited += 10;
          continue;
        }
        throw new PkiError("IO_ERROR", `cannot read ${name}: ${(e as NodeJS.ErrnoException).code}`);
      }
      if (n === 0) break;
      off += n;
    }
    if (off > max) throw tooLarge(name, max);
    return buf.subarray(0, off);
  } finally {
    fs.closeSync(fd);
  }
}

function tooLarge(name: string, max: number, size?: number): PkiError {
  const is = size !== undefined ? `${size} bytes` : `larger than ${max} bytes`;
  return new PkiError("INPUT_TOO_LARGE", `${name} is ${is}; pki reads at most ${max} bytes`);
}

/** Standard input, with the same bound (counted as it arrives, never read whole first). */
export async function readStdin(what: string, max = MAX_INPUT): Promise<Buffer> {
  if (process.stdin.isTTY) throw new PkiError("USAGE", `${what} expected on standard input, but it is a terminal: pipe the file in or give its path`, { exitCode: 2 });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > max) {
      process.stdin.destroy();
      throw new PkiError("INPUT_TOO_LARGE", `${what} on standard input is larger than ${max} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
