// `keygate/verify`: what a backend behind keygate uses to check X-Keygate-Signature.
//
//   import { verifySignature } from 'keygate/verify';
//   const r = verifySignature(secret, req.headers['x-keygate-signature'], {
//     method: req.method, path: new URL(req.url, 'http://x').pathname,
//     tenantId: req.headers['x-tenant-id'], keyId: req.headers['x-api-key-id'],
//   });
//   if (!r.ok) return res.writeHead(401).end();
export { verifySignature, type SignedFields, type VerifyFailure, type VerifyOptions } from './decision/signature.ts';
