import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import { contains } from '../http/client-ip.ts';

// Header hygiene for forwarded requests (SPEC §5): strip before you inject.

/** Headers keygate sets for the upstream; any client-sent copy is removed first. */
export const IDENTITY_HEADERS = ['x-tenant-id', 'x-api-key-id', 'x-api-key-type', 'x-api-key-permissions', 'x-keygate-signature'] as const;

// RFC 9110 §7.6.1: hop-by-hop fields, plus every field named in Connection, are never forwarded. `upgrade` is
// handled by the WebSocket path, which sets its own.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization'];

/** Removes hop-by-hop fields, names listed in Connection, the credential and client copies of identity headers. */
export function stripInbound(req: IncomingMessage, credentialHeader: 'x-api-key' | 'authorization' | null, xfccFrom: BlockList | null): void {
  const headers = req.headers;
  const connection = headers.connection;
  if (connection) {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase();
      if (name) delete headers[name];
    }
  }
  for (const name of HOP_BY_HOP) delete headers[name];
  for (const name of IDENTITY_HEADERS) delete headers[name];
  // X-API-Key always goes; Authorization only when it carried the key (otherwise it belongs to the upstream).
  delete headers['x-api-key'];
  if (credentialHeader === 'authorization') delete headers.authorization;
  // SPEC §7: a client certificate header is believed (and passed on) only from the configured mesh peers.
  if (headers['x-forwarded-client-cert'] !== undefined && !(xfccFrom && contains(xfccFrom, req.socket.remoteAddress ?? ''))) {
    delete headers['x-forwarded-client-cert'];
  }
}

/**
 * X-Forwarded-For/-Proto/-Host: a client's values are kept (and extended) only when the peer is a trusted
 * proxy; from anyone else they are replaced, so a caller cannot claim another address.
 */
export function setForwarded(req: IncomingMessage, trusted: BlockList | null, encrypted: boolean): void {
  const h = req.headers;
  const peer = req.socket.remoteAddress ?? '';
  const fromProxy = trusted !== null && contains(trusted, peer);
  const proto = encrypted ? 'https' : 'http';
  if (fromProxy) {
    h['x-forwarded-for'] = h['x-forwarded-for'] ? `${h['x-forwarded-for']}, ${peer}` : peer;
    h['x-forwarded-proto'] ??= proto;
    h['x-forwarded-host'] ??= h.host ?? '';
  } else {
    h['x-forwarded-for'] = peer;
    h['x-forwarded-proto'] = proto;
    h['x-forwarded-host'] = h.host ?? '';
  }
  delete h['x-forwarded-port'];
}
