/**
 * The one CSV cell grammar: which cells are missing, which are numbers, how a number is spelled back. The
 * training reader, `canopy predict` and the serving handler all read cells through these functions.
 */

/** Cells (trimmed, lower-cased) that mean "missing". `?` is the UCI / ARFF convention. */
const MISSING = new Set(["", "na", "nan", "n/a", "null", "?"]);
/** Plain decimal notation only: no hex/binary/octal, no Infinity, no thousands separators. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Marks a cell that is neither a number nor a missing-value spelling. */
export const INVALID: unique symbol = Symbol("invalid");

/** The missing-value spellings, for messages and documentation. */
export const MISSING_SPELLINGS: readonly string[] = ["(empty)", "NA", "NaN", "N/A", "null", "?"];

/** True for a missing-value spelling (case-insensitive, surrounding blanks ignored). */
export function isMissingCell(cell: string): boolean {
  const c0 = cell.charCodeAt(0);
  if (c0 >= 48 && c0 <= 57) return false; // a digit: no spelling starts with one (the common case, a number)
  return MISSING.has(cell.trim().toLowerCase());
}

/** Strict cell → number: NaN for a missing cell, INVALID for anything that is not plain decimal notation. */
export function parseCell(cell: string): number | typeof INVALID {
  // Fast path for the common case (an unpadded decimal number); Number() alone is too lenient
  // ("" → 0, "0x10" → 16), hence the first-character and prefix checks.
  const c0 = cell.charCodeAt(0);
  if ((c0 >= 48 && c0 <= 57) || c0 === 45) {
    const v = Number(cell);
    if (v - v === 0) {
      const c1 = c0 === 48 ? cell.charCodeAt(1) | 32 : 0; // lower-cased second char
      if (c1 !== 120 && c1 !== 98 && c1 !== 111) return v; // not 0x / 0b / 0o
    }
  }
  const t = cell.trim();
  if (MISSING.has(t.toLowerCase())) return NaN;
  if (!DECIMAL.test(t)) return INVALID;
  const v = Number(t);
  return Number.isFinite(v) ? v : INVALID;
}

/** The canonical spelling of a number read from a cell: "1.0" and "1" are both "1", "-0" is "0". */
export function canonicalNumber(value: number): string {
  return Object.is(value, -0) ? "0" : String(value);
}

/** C0/C1 controls, DEL, bidi overrides and isolates, line/paragraph separators, lone surrogates. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Text from the input made safe to print on a terminal: control characters (an ANSI escape in a column name
 * would otherwise clear the screen), bidi overrides and lone surrogates are shown as \xNN / \u{NNNN}.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
}

const MAX_SHOWN = 60;

/** Input text for a message: quoted, escaped (see printable) and cut short, so errors echo input only in short. */
export function quoted(text: string, max = MAX_SHOWN): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return `"${printable(cut.replace(/\\/g, "\\\\").replace(/"/g, '\\"'))}"`;
}
