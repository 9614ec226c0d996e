import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { contains } from '../http/client-ip.ts';
import type { KeyPolicy } from '../keys/types.ts';
import { refuse, type StageRefusal } from './verify.ts';
import { xfccFingerprint } from './xfcc.ts';

// mTLS: the client certificate comes from keygate's own TLS listener (verified against tls.clientCa),
// or — only from `tls.trustXfccFrom` peers — from a mesh sidecar's X-Forwarded-Client-Cert.

/** What the transport checks read of a request. */
export type TransportHead = Pick<IncomingMessage, 'headers' | 'socket'>;

/** SHA-256 fingerprint (lowercase hex) of the verified client certificate, or null. */
export function clientCertFingerprint(req: TransportHead, xfccFrom: BlockList | null): string | null {
  const socket = req.socket as TLSSocket;
  if (socket.encrypted && socket.authorized) {
    const fp = socket.getPeerCertificate()?.fingerprint256;
    if (fp) return fp.replaceAll(':', '').toLowerCase();
  }
  const xfcc = req.headers['x-forwarded-client-cert'];
  if (typeof xfcc === 'string' && xfccFrom && contains(xfccFrom, req.socket.remoteAddress ?? '')) {
    // Envoy's grammar, the nearest element's Hash only; a malformed header is no certificate (xfcc.ts).
    return xfccFingerprint(xfcc);
  }
  return null;
}

export function checkTransport(key: KeyPolicy, req: TransportHead, xfccFrom: BlockList | null): StageRefusal | null {
  if (!key.enforceMtls) return null;
  const fp = clientCertFingerprint(req, xfccFrom);
  if (fp === null) return refuse('mtls_required', 'This API key requires a verified client certificate.');
  if (key.clientCertFingerprints !== null && !key.clientCertFingerprints.includes(fp)) {
    return refuse('client_certificate_not_allowed', 'This client certificate may not use this API key.');
  }
  return null;
}
