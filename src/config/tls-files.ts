import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { ConfigError, type ConfigProblem } from './errors.ts';
import { readConfigFile, type ReadFile } from './read-file.ts';
import type { Config } from './schema.ts';

// The TLS files a configuration names (the listener's certificate, key and client CA; the upstream's CA and
// keygate's client certificate for it), checked with the configuration: each must be readable, a CA file must
// hold a certificate, and each set must load as Node will load it, so that `config check` finds a missing file
// or a key that does not match its certificate, and serve refuses to start with exit 78 and the option's path,
// not at its first handshake.
//
// The check reads them once, and serve uses what it read (server/serve-config.ts hands it over with the
// configuration): a file read a second time may not be the one checked (replaced meanwhile), or may have nothing
// left to give (a FIFO, as a shell's <(...) or a secrets agent hands a key over, which serve then waited on for
// ever).

/**
 * One side's PEM texts: `ca` is what its peer's certificate is verified against (for the upstream, instead of
 * Node's bundle, as in any Node TLS client); `cert` and `key` its own (for the upstream, the client certificate
 * keygate presents to a backend that requires one, on requests and WebSocket dials alike).
 */
export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

/** The listener's (its `ca` is tls.clientCa) and the upstream dial's (upstream.tls.*). */
export interface TlsFiles {
  listener: TlsMaterial;
  upstream: TlsMaterial;
}

/** The TLS files `c` names, read with `read`, and every problem with them: unreadable ones, and sets that do not make a TLS context. */
export function readTlsFiles(c: Config, read: ReadFile): { problems: ConfigProblem[]; files: TlsFiles } {
  const problems: ConfigProblem[] = [];
  const check = (prefix: string, files: Record<'ca' | 'cert' | 'key', string | null>): TlsMaterial => {
    const pem: TlsMaterial = {};
    let readable = true;
    for (const [option, file] of Object.entries(files) as Array<['ca' | 'cert' | 'key', string | null]>) {
      if (file === null) continue;
      const path = `${prefix}.${prefix === 'tls' && option === 'ca' ? 'clientCa' : option}`;
      try {
        pem[option] = read(file);
      } catch (err) {
        readable = false;
        problems.push({ path, message: `cannot read ${file}: ${(err as Error).message}` });
        continue;
      }
      // Node takes a CA file with no certificate in it (garbage, a private key, nothing) as an empty bundle: no
      // peer would ever verify. X509Certificate reads the first certificate block, wherever it is.
      if (option === 'ca') {
        try {
          new X509Certificate(pem.ca!);
        } catch {
          readable = false;
          problems.push({ path, message: `${file} holds no PEM certificate` });
        }
      }
    }
    if (!readable || Object.keys(pem).length === 0) return pem;
    try {
      createSecureContext(pem satisfies SecureContextOptions);
    } catch (err) {
      problems.push({ path: prefix, message: `the files do not load as TLS material: ${(err as Error).message}` });
    }
    return pem;
  };
  const listener = check('tls', { ca: c.tls.clientCa, cert: c.tls.cert, key: c.tls.key });
  const upstream = check('upstream.tls', c.upstream.tls);
  return { problems, files: { listener, upstream } };
}

/** For a start that no check went before (startKeygate called as a library): the files read here, problems thrown. */
export function tlsFilesOrThrow(c: Config): TlsFiles {
  const { problems, files } = readTlsFiles(c, readConfigFile);
  if (problems.length) throw new ConfigError(problems);
  return files;
}
