import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { readConfigFile, type ConfigProblem, type ReadFile } from './load.ts';
import type { Config } from './schema.ts';

// The TLS files a configuration names (the listener's certificate, key and client CA; the upstream's CA and
// keygate's client certificate for it), checked with the configuration: each must be readable, and each set must
// load as Node will load it, so that `config check` finds a missing file or a key that does not match its
// certificate, and serve refuses to start with exit 78 and the option's path, not at its first handshake.

/** Every problem with the TLS files `c` names: unreadable ones, and sets that do not make a TLS context. */
export function tlsProblems(c: Config, read: ReadFile = readConfigFile): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const check = (prefix: string, files: Record<'ca' | 'cert' | 'key', string | null>): void => {
    const pem: SecureContextOptions = {};
    let readable = true;
    for (const [option, file] of Object.entries(files) as Array<['ca' | 'cert' | 'key', string | null]>) {
      if (file === null) continue;
      try {
        pem[option] = read(file);
      } catch (err) {
        readable = false;
        const name = prefix === 'tls' && option === 'ca' ? 'clientCa' : option;
        problems.push({ path: `${prefix}.${name}`, message: `cannot read ${file}: ${(err as Error).message}` });
      }
    }
    if (!readable || Object.keys(pem).length === 0) return;
    try {
      createSecureContext(pem);
    } catch (err) {
      problems.push({ path: prefix, message: `the files do not load as TLS material: ${(err as Error).message}` });
    }
  };
  check('tls', { ca: c.tls.clientCa, cert: c.tls.cert, key: c.tls.key });
  check('upstream.tls', c.upstream.tls);
  return problems;
}
