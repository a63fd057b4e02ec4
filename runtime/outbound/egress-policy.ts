import { BlockList, isIP } from "node:net";

/**
 * Addresses functions may not reach unless the operator allows them: loopback, private, carrier-grade
 * NAT, link-local (which holds the 169.254.169.254 cloud-metadata service), multicast, reserved and
 * unspecified ranges, for IPv4 and IPv6 (RFC 6890 and friends).
 */
const DENIED_V4: Array<[string, number]> = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
];
const DENIED_V6: Array<[string, number]> = [
  // Unspecified, loopback and the deprecated IPv4-compatible range.
  ["::", 96],
  // IPv4-mapped addresses (::ffff:0:0/96) are judged as the IPv4 they carry (unmapIPv4). A rule
  // for the range itself cannot be used: node's BlockList matches every IPv4 address against it.
  // NAT64 (RFC 6052, RFC 8215), 6to4 and Teredo carry IPv4 addresses inside.
  ["64:ff9b::", 96],
  ["64:ff9b:1::", 48],
  ["2002::", 16],
  ["2001::", 32],
  ["100::", 64],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
];

/** Decides which IP addresses outbound fetch may connect to. */
export interface EgressPolicy {
  isAllowed(ip: string): boolean;
}

/**
 * Parses an allow list like `127.0.0.1,10.0.0.0/8,::1` (HEARTH_EGRESS_ALLOW): addresses and CIDR
 * ranges that are reachable even though they are in a denied range.
 *
 * @throws Error naming the bad entry
 */
export function createEgressPolicy(allow = ""): EgressPolicy {
  const denied = new BlockList();
  for (const [net, prefix] of DENIED_V4) denied.addSubnet(net, prefix, "ipv4");
  for (const [net, prefix] of DENIED_V6) denied.addSubnet(net, prefix, "ipv6");
  const allowed = new BlockList();
  for (const entry of allow
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [address = "", prefix] = entry.split("/");
    const family = isIP(address);
    if (family === 0) throw new Error(`Bad egress allow entry ${JSON.stringify(entry)}: not an IP address or CIDR`);
    const type = family === 4 ? "ipv4" : "ipv6";
    if (prefix === undefined) allowed.addAddress(address, type);
    else allowed.addSubnet(address, Number(prefix), type);
  }
  return {
    isAllowed(ip) {
      const address = unmapIPv4(ip);
      const family = isIP(address);
      if (family === 0) return false;
      const type = family === 4 ? "ipv4" : "ipv6";
      return allowed.check(address, type) || !denied.check(address, type);
    },
  };
}

/**
 * `::ffff:127.0.0.1` and `::ffff:7f00:1` are 127.0.0.1: judge IPv4-mapped IPv6 addresses, in either
 * notation, as the IPv4 address they are.
 */
function unmapIPv4(ip: string): string {
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (dotted?.[1]) return dotted[1];
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (!hex?.[1] || !hex[2]) return ip;
  const high = Number.parseInt(hex[1], 16);
  const low = Number.parseInt(hex[2], 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}
