/**
 * IP addresses in evidence have exactly one text form, so two collectors that
 * saw the same peer write the same bytes: IPv4 as dotted decimal without
 * leading zeros, IPv6 as RFC 5952 (lowercase, no leading zeros in a group,
 * the longest run of two or more zero groups as "::", the first such run on a
 * tie) with IPv4-mapped addresses (::ffff:0:0/96) as "::ffff:a.b.c.d".
 */

/** Canonical IPv4 dotted decimal. */
export const IPV4_PATTERN =
  /^(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

/** The characters and length an RFC 5952 IPv6 text can have; `isCanonicalIPv6` decides. */
export const IPV6_SHAPE = /^[0-9a-f:.]{2,45}$/;

function formatIPv4(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/**
 * The canonical text of a raw address: 4 bytes (IPv4, network order) or 16
 * bytes (IPv6). Throws RangeError for any other length.
 */
export function formatIp(addr: Uint8Array): string {
  if (addr.length === 4) return formatIPv4(addr, 0);
  if (addr.length !== 16) {
    throw new RangeError(`formatIp: an address is 4 (IPv4) or 16 (IPv6) bytes, got ${addr.length}`);
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((addr[i]! << 8) | addr[i + 1]!);
  let mapped = true;
  for (let i = 0; i < 5; i++) if (groups[i] !== 0) mapped = false;
  if (mapped && groups[5] === 0xffff) return `::ffff:${formatIPv4(addr, 12)}`;
  // Longest run of >= 2 zero groups; the first one wins a tie (RFC 5952 4.2.3).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

/**
 * Parse IPv4 or IPv6 text (any valid RFC 4291 form) to raw bytes, or
 * undefined when the text is not an address.
 */
export function parseIp(text: string): Uint8Array | undefined {
  if (text.includes(':')) return parseIPv6(text);
  return parseIPv4(text);
}

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^[0-9]{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIPv6(text: string): Uint8Array | undefined {
  let s = text;
  let v4: Uint8Array | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 2 ? total > 7 : total !== 8) return undefined;
  const groups = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (v4) out.set(v4, 12);
  return out;
}

/** True when `text` is an IPv6 address written exactly in the canonical form. */
export function isCanonicalIPv6(text: string): boolean {
  if (!IPV6_SHAPE.test(text)) return false;
  const b = parseIPv6(text);
  return b !== undefined && formatIp(b) === text;
}
