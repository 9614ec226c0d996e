import type { IncomingMessage } from 'node:http';
import { ApiError } from '../http/errors.ts';

/**
 * Every console call (sign-in, sign-out and the API) must come from the console's own pages: an `Origin` whose
 * host is the request's `Host` (or one listed in `console.origins`, for a proxy that rewrites Host), or — since
 * browsers send no Origin on a same-origin GET — `Sec-Fetch-Site: same-origin`. Anything else, including a
 * request with neither header, is refused 403 `origin_not_allowed`: a page on another site cannot use an
 * operator's session even where SameSite would let the cookie travel (a sibling subdomain is "same-site").
 */
export function createOriginCheck(configured: readonly string[]): (req: IncomingMessage) => void {
  const listed = new Set(configured.map((o) => new URL(o).origin));
  const refuse = (why: string): never => {
    throw new ApiError('origin_not_allowed', `Console calls must come from the console's own pages (${why}).`);
  };
  return (req) => {
    const origin = req.headers.origin;
    if (origin === undefined) {
      if (req.headers['sec-fetch-site'] === 'same-origin') return;
      return refuse('no Origin and no Sec-Fetch-Site: same-origin');
    }
    if (listed.has(origin)) return;
    let host: string;
    try {
      const url = new URL(origin);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return refuse('Origin is not http(s)');
      host = url.host;
    } catch {
      return refuse('Origin is not a URL');
    }
    if (host !== req.headers.host) refuse(`Origin ${origin} is not this host`);
  };
}

/** True when the page that called was served over https (then the session cookie is `Secure`). */
export const calledOverTls = (req: IncomingMessage): boolean => req.headers.origin?.startsWith('https://') ?? false;
