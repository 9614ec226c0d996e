import { SESSION_TOKEN_PREFIX } from '../keys/session-token.ts';

// The canonical request target: one function turns the request target into the form that route
// policy, assistant path parameters, the signature and forwarding all use, so the policy decides on exactly
// the path the upstream will route. Forms that upstream routers read differently from one another are refused
// rather than guessed at:
// - a fragment (`#`): Node keeps it in `req.url`, upstream routers drop it;
// - a dot segment, also behind escapes (`%2e%2e`): routers resolve them, so `/v1/public/../admin` would reach a
//   route the policy never matched;
// - a `;` in the path, raw or escaped: servlet containers, Spring and find-my-way cut a segment at it (matrix
//   parameters), Express does not, so `/v1/calls;x` is a different route to each;
// - an encoded `/` or `\`, a raw `\`, a doubled slash: some routers split on them, others do not;
// - a control or non-ASCII byte, escaped or not: a router that decodes and folds case may turn one into an ASCII
//   letter (`%E2%84%AA`, KELVIN SIGN, lower-cases to `k`);
// - anything but origin-form (`/path?query`).
// Escapes of unreserved characters (RFC 3986 §2.3) are decoded, so `/v1/%63alls` is `/v1/calls` for the policy
// and for every upstream alike (Flask decodes it, Express does not); other escapes are kept, with upper-case
// hex (RFC 3986 §6.2.2.1). Every `api_key` query parameter, and every `token` holding a session token, is removed:
// the upstream never sees a credential.

export interface Target {
  /** The canonical path: what the policy matches and the upstream receives. */
  path: string;
  /** The path and the query without `api_key`: what is forwarded. */
  url: string;
}

/** Why a target was refused (the message of a 400 `malformed_request`). */
export interface TargetRefusal {
  refused: string;
}

const refusal = (refused: string): TargetRefusal => ({ refused });
const notOriginForm = refusal('The request target must be a path starting with /.');
const badByte = refusal('The request target holds a control, space or non-ASCII character.');
const fragment = refusal('The request target holds a fragment (#).');
const backslash = refusal('The request target holds a backslash.');
const doubledSlash = refusal('The request path holds an empty segment (//).');
const dotSegment = refusal('The request path holds a dot segment (. or ..).');
const badEscape = refusal('The request path holds a malformed percent-escape.');
const encodedSeparator = refusal('The request path holds an encoded / or \\.');
const encodedControl = refusal('The request path holds an escaped control character.');
const encodedNonAscii = refusal('The request path holds an escaped non-ASCII byte.');
const matrixParameter = refusal('The request path holds a ; (matrix parameter), which routers read differently.');

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/** ALPHA / DIGIT / "-" / "." / "_" / "~" */
function isUnreserved(b: number): boolean {
  const lower = b | 0x20;
  return (lower >= 0x61 && lower <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
}

/** The byte of the escape at `i` (`%XX`), or -1. */
function escapedByte(s: string, i: number): number {
  if (i + 2 >= s.length) return -1;
  const hi = hexValue(s.charCodeAt(i + 1));
  const lo = hexValue(s.charCodeAt(i + 2));
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/** One path segment with unreserved escapes decoded and the rest normalised, or a refusal. */
function decodeSegment(seg: string): string | TargetRefusal {
  if (!seg.includes('%')) return seg;
  let out = '';
  let i = 0;
  while (i < seg.length) {
    if (seg.charCodeAt(i) !== 0x25) {
      out += seg[i++];
      continue;
    }
    const b = escapedByte(seg, i);
    if (b < 0) return badEscape;
    if (b >= 0x80) return encodedNonAscii;
    if (b === 0x2f || b === 0x5c) return encodedSeparator;
    if (b === 0x3b) return matrixParameter;
    if (b < 0x20 || b === 0x7f) return encodedControl;
    out += isUnreserved(b) ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
    i += 3;
  }
  return out;
}

const isDotSegment = (seg: string): boolean => seg === '.' || seg === '..';

function canonicalPath(raw: string): string | TargetRefusal {
  if (raw.includes(';')) return matrixParameter;
  // Most paths hold no escape, no dot segment and no empty segment: they are canonical as they are.
  if (!raw.includes('%') && !raw.includes('/.') && !raw.includes('//')) return raw;
  const segments = raw.split('/');
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '' && i < segments.length - 1) return doubledSlash;
    const decoded = decodeSegment(seg);
    if (typeof decoded !== 'string') return decoded;
    if (isDotSegment(decoded)) return dotSegment;
    segments[i] = decoded;
  }
  return segments.join('/');
}

/** A query parameter's name or value as URLSearchParams decodes it (how credentials are read, auth/credential.ts). */
function decoded(part: string): string | null {
  if (!part.includes('%') && !part.includes('+')) return part;
  try {
    return decodeURIComponent(part.replaceAll('+', ' '));
  } catch {
    return null;
  }
}

/**
 * A credential in the query: any `api_key`, and a `token` holding a session token (`token` is a common name, so
 * one that holds anything else is the upstream's and stays).
 */
export function isCredentialParam(pair: string): boolean {
  // Rack 2, Go before 1.17 and Python before 3.9.2 split parameters on `;` too: `x=;api_key=K` is a key to them.
  if (pair.includes(';')) return pair.split(';').some(isCredentialParam);
  const eq = pair.indexOf('=');
  const name = decoded(eq < 0 ? pair : pair.slice(0, eq));
  if (name === 'api_key') return true;
  return name === 'token' && eq >= 0 && (decoded(pair.slice(eq + 1))?.startsWith(SESSION_TOKEN_PREFIX) ?? false);
}

/** The query without its credentials (isCredentialParam), otherwise byte for byte as sent. */
function withoutApiKey(query: string): string {
  if (!/api|kg_st|%|\+/i.test(query)) return query;
  return query
    .split('&')
    .filter((pair) => !isCredentialParam(pair))
    .join('&');
}

export function isRefusal(t: Target | TargetRefusal): t is TargetRefusal {
  return (t as TargetRefusal).refused !== undefined;
}

/** The canonical form of a request target (`req.url`), or why it is refused. */
export function canonicalTarget(raw: string): Target | TargetRefusal {
  if (raw.charCodeAt(0) !== 0x2f) return notOriginForm;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return badByte;
    if (c === 0x23) return fragment;
    if (c === 0x5c) return backslash;
  }
  const q = raw.indexOf('?');
  const path = canonicalPath(q < 0 ? raw : raw.slice(0, q));
  if (typeof path !== 'string') return path;
  const query = q < 0 ? '' : withoutApiKey(raw.slice(q + 1));
  return { path, url: query ? `${path}?${query}` : path };
}
