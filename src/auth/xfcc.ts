// X-Forwarded-Client-Cert by Envoy's grammar (Envoy docs, configuration/http/http_conn_man/headers):
// the value is a comma-separated list of elements, one per proxy, the right-most added by the nearest one; an
// element is a semicolon-separated list of Key=Value pairs (keys By, Hash, Cert, Chain, Subject, URI, DNS,
// case-insensitive); a value holding `,` `;` or `=` is double-quoted, with `\"` for a quote inside (and, as
// RFC 2253 subjects carry them, `\\` and `\,`: a backslash escapes the next character).
//
// Splitting on every comma let `Subject="CN=a,OU=x\,Hash=<victim>"` put the victim's hash in
// the "last element". Here separators count only outside quotes, and a header that does not parse whole gives no
// certificate at all, never a partial reading.

/** One element: its pairs in order, keys lower-cased (URI and DNS may repeat; the others may not). */
export type XfccElement = ReadonlyArray<{ readonly key: string; readonly value: string }>;

/** Keys an element carries at most once; a second one makes the header malformed. */
const SINGLE = new Set(['by', 'hash', 'cert', 'chain', 'subject']);
const KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;
const SHA256_HEX = /^[0-9A-Fa-f]{64}$/;

const isOws = (c: string | undefined): boolean => c === ' ' || c === '\t';

/** Every element of the header, nearest last; null when any part of it is malformed. */
export function parseXfcc(header: string): XfccElement[] | null {
  const elements: XfccElement[] = [];
  let pairs: Array<{ key: string; value: string }> = [];
  let seen = new Set<string>();
  let i = 0;
  const n = header.length;
  for (;;) {
    while (isOws(header[i])) i++;
    const eq = header.indexOf('=', i);
    if (eq < 0) return null;
    const key = header.slice(i, eq);
    if (!KEY.test(key)) return null; // also refuses `,` `;` `"` before the `=`: an empty pair or element
    const lower = key.toLowerCase();
    if (SINGLE.has(lower) && seen.has(lower)) return null;
    seen.add(lower);
    i = eq + 1;

    let value = '';
    if (header[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) return null; // unterminated quote
        const c = header[i]!;
        if (c === '"') break;
        if (c === '\\') {
          if (i + 1 >= n) return null;
          value += header[i + 1];
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
      i++;
      while (isOws(header[i])) i++;
    } else {
      const start = i;
      while (i < n && header[i] !== ',' && header[i] !== ';') {
        if (header[i] === '"') return null; // a quote inside an unquoted value
        i++;
      }
      value = header.slice(start, i).trimEnd();
    }
    pairs.push({ key: lower, value });

    if (i >= n) {
      elements.push(pairs);
      return elements;
    }
    const sep = header[i];
    i++;
    if (sep === ',') {
      elements.push(pairs);
      pairs = [];
      seen = new Set();
    } else if (sep !== ';') {
      return null; // anything but a separator after a closing quote
    }
  }
}

/**
 * The SHA-256 fingerprint (lowercase hex) of the certificate the nearest proxy verified: the `Hash` of the
 * last element, and only of it. Null when the header is malformed or that element has no 64-hex-digit Hash.
 */
export function xfccFingerprint(header: string): string | null {
  const nearest = parseXfcc(header)?.at(-1);
  const hash = nearest?.find((p) => p.key === 'hash')?.value;
  return hash !== undefined && SHA256_HEX.test(hash) ? hash.toLowerCase() : null;
}
