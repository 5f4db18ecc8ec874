import type { CellValue } from "@canopy/forest";
import { InternalError } from "./errors.ts";

/**
 * The bytes a partitioned run's rows are spilled as between its one read and each partition's pack: a row number,
 * then per cell a tag and its value. Written for this one job: v8.serialize of the rows (what came before) spent 4 s of
 * 15 in preparing 2.9M flights rows, and built every row as arrays the collector then chased. A chunk is written by
 * one process and read back by it, so no version: it never outlives the run's preparation.
 */
const Tag = {
  Undefined: 0,
  Null: 1,
  Number: 2,
  /** A string of code units below 0x80: one byte each. */
  Ascii: 3,
  /** Any other string: UTF-8 (a lone surrogate becomes U+FFFD there, so such a string is stored as UTF-16 instead). */
  Utf8: 4,
  Utf16: 5,
  True: 6,
  False: 7,
  Date: 8,
  BigInt: 9,
} as const;
type Tag = (typeof Tag)[keyof typeof Tag];

/** Rows encoded into one growing buffer; `take()` hands its bytes over and starts again. */
export class SpillEncoder {
  private buf = Buffer.allocUnsafe(1024);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  length = 0;

  row(row: number, values: CellValue[]): void {
    this.room(8);
    this.view.setFloat64(this.length, row, true);
    this.length += 8;
    for (const v of values) this.cell(v);
  }

  /** The bytes so far (a copy-free view of them); the encoder starts empty again with a small buffer. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.length);
    this.buf = Buffer.allocUnsafe(1024);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.length = 0;
    return out;
  }

  private cell(v: CellValue): void {
    if (typeof v === "string") return this.string(v);
    if (typeof v === "number") return this.number(Tag.Number, v);
    if (v === null) return this.tag(Tag.Null);
    if (v === undefined) return this.tag(Tag.Undefined);
    if (typeof v === "boolean") return this.tag(v ? Tag.True : Tag.False);
    if (v instanceof Date) return this.number(Tag.Date, v.getTime());
    const digits = v.toString();
    this.room(5 + digits.length);
    this.buf[this.length] = Tag.BigInt;
    this.view.setUint32(this.length + 1, digits.length, true);
    this.length += 5 + this.buf.write(digits, this.length + 5, "latin1");
  }

  private tag(t: Tag): void {
    this.room(1);
    this.buf[this.length++] = t;
  }

  private number(t: Tag, x: number): void {
    this.room(9);
    this.buf[this.length] = t;
    this.view.setFloat64(this.length + 1, x, true);
    this.length += 9;
  }

  private string(s: string): void {
    const n = s.length;
    // Worst case: three UTF-8 bytes per code unit.
    this.room(5 + 3 * n);
    const buf = this.buf;
    const at = this.length + 5;
    let i = 0;
    // Short ASCII strings (most cells) are copied by hand: cheaper than a write call each.
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[at + i] = c;
    }
    let tag: Tag = Tag.Ascii;
    let bytes = n;
    if (i < n) {
      tag = Tag.Utf8;
      bytes = buf.write(s, at, "utf8");
      // UTF-8 replaces a lone surrogate: keep such a string's exact code units.
      if (buf.toString("utf8", at, at + bytes) !== s) {
        tag = Tag.Utf16;
        bytes = buf.write(s, at, "utf16le");
      }
    }
    buf[this.length] = tag;
    this.view.setUint32(this.length + 1, bytes, true);
    this.length = at + bytes;
  }

  private room(bytes: number): void {
    if (this.length + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.length + bytes));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }
}

/** Each row of `bytes` (SpillEncoder's) with `width` cells, in order. */
export function decodeRows(bytes: Buffer, width: number, each: (values: CellValue[], row: number) => void): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.length) {
    const row = view.getFloat64(at, true);
    at += 8;
    const values: CellValue[] = new Array(width);
    for (let c = 0; c < width; c++) {
      const tag = bytes[at++]!;
      switch (tag) {
        case Tag.Number:
          values[c] = view.getFloat64(at, true);
          at += 8;
          break;
        case Tag.Date:
          values[c] = new Date(view.getFloat64(at, true));
          at += 8;
          break;
        case Tag.Ascii:
        case Tag.Utf8:
        case Tag.Utf16:
        case Tag.BigInt: {
          const n = view.getUint32(at, true);
          at += 4;
          values[c] =
            tag === Tag.Ascii
              ? bytes.toString("latin1", at, at + n)
              : tag === Tag.Utf8
                ? bytes.toString("utf8", at, at + n)
                : tag === Tag.Utf16
                  ? bytes.toString("utf16le", at, at + n)
                  : BigInt(bytes.toString("latin1", at, at + n));
          at += n;
          break;
        }
        case Tag.Null:
          values[c] = null;
          break;
        case Tag.Undefined:
          values[c] = undefined;
          break;
        case Tag.True:
          values[c] = true;
          break;
        case Tag.False:
          values[c] = false;
          break;
        default:
          throw new InternalError(`spilled rows: unknown cell tag ${tag} at byte ${at - 1}`);
      }
    }
    each(values, row);
  }
}
