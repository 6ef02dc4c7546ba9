import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Refuses webhook targets on private, loopback, link-local and other non-public addresses (SSRF),
 * unless their host name or address is allow-listed. Every address a name resolves to must pass,
 * and the caller connects to the address that was checked, so a re-resolution cannot swap it.
 */

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** True when `address` (an IP literal) is private, loopback, link-local, multicast or unspecified. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return blocked.check(mapped[1]!, 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return true;
}

/** A checked target: connect to `address` (family 4 or 6) while sending `Host` for the URL's name. */
export interface ResolvedTarget {
  address: string;
  family: 4 | 6;
}

/** The webhook host is not allowed. */
export class WebhookRefusedError extends Error {
  override readonly name = 'WebhookRefusedError';
}

/**
 * Resolves `url`'s host and checks every address. `allow` lists host names and IP literals that may
 * be private (e.g. `127.0.0.1` in tests). Rejects with WebhookRefusedError.
 */
export async function resolveWebhook(url: URL, allow: ReadonlySet<string>): Promise<ResolvedTarget> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const allowed = allow.has(host);
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (error) {
      throw new WebhookRefusedError(`cannot resolve webhook host ${host}: ${(error as Error).message}`);
    }
  }
  if (addresses.length === 0) throw new WebhookRefusedError(`webhook host ${host} has no address`);
  for (const a of addresses) {
    if (!allowed && !allow.has(a.address) && isPrivateAddress(a.address)) {
      throw new WebhookRefusedError(
        `webhook host ${host} resolves to ${a.address}, a private or loopback address; allow-list it to use it`,
      );
    }
  }
  const first = addresses[0]!;
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}
