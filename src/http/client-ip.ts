import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

/** A compiled CIDR list ("10.0.0.0/8", "::1/128", "127.0.0.1"). */
export function compileCidrs(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const entry of cidrs) {
    const [addr, bits] = entry.split('/');
    const family = isIP(addr ?? '') === 6 ? 'ipv6' : 'ipv4';
    if (!isIP(addr ?? '')) throw new Error(`not an IP address or CIDR: ${entry}`);
    if (bits === undefined) list.addAddress(addr!, family);
    else list.addSubnet(addr!, Number(bits), family);
  }
  return list;
}

export function contains(list: BlockList, ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  if (family === 6 && ip.startsWith('::ffff:')) return list.check(ip.slice(7), 'ipv4') || list.check(ip, 'ipv6');
  return list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The client's address: the socket peer, or — only when the peer is a trusted proxy — the right-most
 * X-Forwarded-For entry that is not itself a trusted proxy (the usual rule, as in nginx's real_ip_recursive).
 */
export function clientIpOf(req: IncomingMessage, trusted: BlockList | null): string {
  const peer = req.socket.remoteAddress ?? '';
  if (!trusted || !contains(trusted, peer)) return peer;
  const xff = req.headers['x-forwarded-for'];
  if (!xff) return peer;
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (!isIP(hop)) return peer;
    if (!contains(trusted, hop)) return hop;
  }
  return hops[0] ?? peer;
}
