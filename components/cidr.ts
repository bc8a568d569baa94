// Address arithmetic for config validation and address plans. Plain data, no Pulumi.

export interface Cidr {
    version: 4 | 6;
    /** Network address as an integer (host bits cleared). */
    network: bigint;
    prefix: number;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseV4(text: string): bigint | undefined {
    const m = V4.exec(text);
    if (!m) return undefined;
    let value = 0n;
    for (const part of m.slice(1)) {
        const n = Number(part);
        if (n > 255 || (part.length > 1 && part.startsWith("0"))) return undefined;
        value = (value << 8n) | BigInt(n);
    }
    return value;
}

function parseV6(text: string): bigint | undefined {
    if (!/^[0-9a-fA-F:]+$/.test(text) || text.split("::").length > 2) return undefined;
    const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
    const groups = (s: string) => (s === "" ? [] : s.split(":"));
    const left = groups(head);
    const right = tail === undefined ? [] : groups(tail);
    const missing = 8 - left.length - right.length;
    if (tail === undefined ? left.length !== 8 : missing < 1) return undefined;
    const all = [...left, ...Array(tail === undefined ? 0 : missing).fill("0"), ...right];
    let value = 0n;
    for (const g of all) {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        value = (value << 16n) | BigInt(parseInt(g, 16));
    }
    return value;
}

export function parseAddress(text: string): { version: 4 | 6; value: bigint } | undefined {
    const v4 = parseV4(text);
    if (v4 !== undefined) return { version: 4, value: v4 };
    const v6 = parseV6(text);
    if (v6 !== undefined) return { version: 6, value: v6 };
    return undefined;
}

function bits(version: 4 | 6): number {
    return version === 4 ? 32 : 128;
}

/** Parses "a.b.c.d/n" or "x::/n". Host bits must be zero: "10.0.0.1/8" is a typo more often than not. */
export function parseCidr(text: string): Cidr | undefined {
    const slash = text.indexOf("/");
    if (slash < 0) return undefined;
    const address = parseAddress(text.slice(0, slash));
    const prefixText = text.slice(slash + 1);
    if (!address || !/^\d{1,3}$/.test(prefixText)) return undefined;
    const prefix = Number(prefixText);
    const width = bits(address.version);
    if (prefix > width) return undefined;
    const hostMask = (1n << BigInt(width - prefix)) - 1n;
    if ((address.value & hostMask) !== 0n) return undefined;
    return { version: address.version, network: address.value, prefix };
}

function lastAddress(c: Cidr): bigint {
    return c.network + (1n << BigInt(bits(c.version) - c.prefix)) - 1n;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
    return a.version === b.version && a.network <= lastAddress(b) && b.network <= lastAddress(a);
}

export function containsAddress(c: Cidr, address: string): boolean {
    const a = parseAddress(address);
    return a !== undefined && a.version === c.version && a.value >= c.network && a.value <= lastAddress(c);
}

export function isWholeInternet(text: string): boolean {
    const c = parseCidr(text);
    return c !== undefined && c.prefix === 0;
}

export function formatAddress(version: 4 | 6, value: bigint): string {
    if (version === 4) {
        return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join(".");
    }
    const groups: string[] = [];
    for (let s = 112n; s >= 0n; s -= 16n) groups.push(((value >> s) & 0xffffn).toString(16));
    return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

/** The `index`-th subnet of size `/prefix` inside `parent` (e.g. the 2nd /24 of a /16). */
export function subnet(parent: Cidr, prefix: number, index: number): string {
    const width = bits(parent.version);
    const count = 1n << BigInt(prefix - parent.prefix);
    if (prefix < parent.prefix || BigInt(index) >= count) {
        throw new Error(`subnet ${index} of /${prefix} does not fit in /${parent.prefix}`);
    }
    const network = parent.network + (BigInt(index) << BigInt(width - prefix));
    return `${formatAddress(parent.version, network)}/${prefix}`;
}

/** The `offset`-th address inside `c` (offset 1 is the first usable IPv4 host address). */
export function hostAddress(c: Cidr, offset: number): string {
    const value = c.network + BigInt(offset);
    if (value > lastAddress(c)) throw new Error(`address offset ${offset} does not fit in /${c.prefix}`);
    return formatAddress(c.version, value);
}

/**
 * The fewest CIDRs that cover exactly the given addresses and CIDRs, no more: two sibling
 * blocks that are both present become their parent, again and again. A list of many hosts
 * of a range (a site's) collapses to a few rules; scattered addresses stay as they are.
 */
export function exactCover(items: string[]): string[] {
    const key = (c: Cidr) => `${c.version} ${c.network} ${c.prefix}`;
    const blocks = new Map<string, Cidr>();
    const others: string[] = [];
    for (const item of items) {
        const c = parseCidr(item.includes("/") ? item : `${item}/${parseAddress(item)?.version === 6 ? 128 : 32}`);
        if (c) blocks.set(key(c), c);
        else others.push(item);
    }
    // Drop blocks inside others, then merge siblings from the longest prefix up.
    let list = [...blocks.values()].filter((c, _i, all) => !all.some((o) => o !== c && o.version === c.version && o.prefix < c.prefix && overlaps(o, c)));
    for (let merged = true; merged; ) {
        merged = false;
        const present = new Set(list.map(key));
        const next: Cidr[] = [];
        const used = new Set<string>();
        for (const c of [...list].sort((a, b) => b.prefix - a.prefix)) {
            if (used.has(key(c))) continue;
            const size = 1n << BigInt(bits(c.version) - c.prefix);
            const sibling: Cidr = { version: c.version, network: c.network ^ size, prefix: c.prefix };
            if (c.prefix > 0 && present.has(key(sibling)) && !used.has(key(sibling))) {
                used.add(key(c));
                used.add(key(sibling));
                next.push({ version: c.version, network: c.network & ~size, prefix: c.prefix - 1 });
                merged = true;
            } else {
                used.add(key(c));
                next.push(c);
            }
        }
        list = next;
    }
    const text = (c: Cidr) => `${formatAddress(c.version, c.network)}/${c.prefix}`;
    return [...list.sort((a, b) => a.version - b.version || (a.network < b.network ? -1 : a.network > b.network ? 1 : 0)).map(text), ...others];
}
