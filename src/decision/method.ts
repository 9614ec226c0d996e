import { METHODS } from '../http/node-http.ts';

// The request's method as the decision takes it: one of the methods node's parser knows, all upper-case tokens
// (RFC 9110 §9.1 makes methods case-sensitive, and the route policy names them in capitals). node's parser
// refuses every other method on keygate's own listeners (the proxy's doors, and Envoy's form, whose check keeps
// the original method), answered through http/client-error.ts; a gateway that describes the method in a header
// is held to the same set, so every door decides alike: Go's server (Caddy, Traefik) passes `delete` on, and a
// backend that upper-cases the method (Werkzeug) would run DELETE where the policy matched a `delete` it did not
// know. Anything else is refused 400 `malformed_request`.

const KNOWN = new Set(METHODS);

export const isCanonicalMethod = (method: string): boolean => KNOWN.has(method);
