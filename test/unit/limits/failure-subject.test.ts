import { describe, expect, it } from 'vitest';
import { failureSubject } from '../../../src/limits/failures.ts';

// Failed attempts are counted per IPv4 address and per IPv6 /64 (a client holds a whole /64).
describe('failureSubject', () => {
  it.each([
    ['192.0.2.7', '192.0.2.7'],
    ['::ffff:192.0.2.7', '192.0.2.7'],
    ['::FFFF:c000:0207', '192.0.2.7'],
    ['2001:db8:7:1::1', '2001:db8:7:1::/64'],
    ['2001:db8:7:1::ffff', '2001:db8:7:1::/64'],
    ['2001:0db8:0007:0001:abcd:ef01:2345:6789', '2001:db8:7:1::/64'],
    ['2001:DB8:7:1:0:0:0:9', '2001:db8:7:1::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['64:ff9b::192.0.2.7', '64:ff9b:0:0::/64'],
    ['2001:db8:7:2::1', '2001:db8:7:2::/64'],
    ['not an address', 'not an address'],
    ['1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8:9'],
  ])('%s → %s', (ip, subject) => {
    expect(failureSubject(ip)).toBe(subject);
  });
});
