import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.ts';

// How keygate dials an https (and wss) upstream, the same for requests (undici's pool) and WebSocket dials (`ws`):
// the CA its certificate is verified against (Node's bundle when none is set: a CA given here replaces it, as in
// any Node TLS client), and the client certificate keygate presents when the upstream asks for one (mutual TLS
// from the gateway to the backend, as Kong's client_certificate or Envoy's upstream TLS context). The files were
// checked with the configuration (config/tls-files.ts); they are read once, at start-up.

export interface UpstreamTls {
  ca?: string;
  cert?: string;
  key?: string;
}

export function readUpstreamTls(cfg: Config['upstream']['tls']): UpstreamTls {
  const tls: UpstreamTls = {};
  if (cfg.ca) tls.ca = readFileSync(cfg.ca, 'utf8');
  if (cfg.cert && cfg.key) {
    tls.cert = readFileSync(cfg.cert, 'utf8');
    tls.key = readFileSync(cfg.key, 'utf8');
  }
  return tls;
}
