import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Certificates made with the real openssl for tests of TLS (an upstream's certificate, keygate's client
// certificate): a CA in `dir` (ca.crt, ca.key) and certificates it issues (<name>.crt, <name>.key).

const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });

/** A key and a certificate request for `cn`, unsigned: <name>.key and <name>.csr. */
export function makeKey(dir: string, name: string, cn: string): void {
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, `${name}.key`), '-subj', `/CN=${cn}`, '-out', join(dir, `${name}.csr`));
}

/** A CA named `cn` in `dir`, and `issue`, which signs a certificate for `cn` with the extensions given (`ext`, openssl's extfile lines). */
export function certificateAuthority(dir: string, cn: string): { issue(name: string, cn: string, ext: string): void } {
  const f = (name: string) => join(dir, name);
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-subj', `/CN=${cn}`, '-days', '2', '-out', f('ca.crt'));
  return {
    issue(name, subject, ext) {
      makeKey(dir, name, subject);
      writeFileSync(f(`${name}.ext`), ext);
      openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`));
    },
  };
}
