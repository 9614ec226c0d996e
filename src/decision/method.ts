// The request's method as the decision takes it: RFC 9110 §9.1 makes a method a case-sensitive token, and the
// route policy names methods in capitals. A door whose parser does not already refuse other forms (a gateway
// describes the method in a header; Go's server, behind Caddy and Traefik, accepts `delete`) refuses them with
// 400 `malformed_request` rather than decide on another method than the upstream may run: a backend that
// upper-cases the method (Werkzeug) would run DELETE where the policy matched a `delete` it did not know.
// node's own parser (the proxy's doors, and Envoy's form on the authorizer listener) accepts only the
// upper-case methods it knows, and answers anything else through http/client-error.ts.

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Z-]{1,32}$/;

export const isCanonicalMethod = (method: string): boolean => METHOD.test(method);
