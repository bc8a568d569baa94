// What the policies check, as plain functions of plain data: the policy pack wires
// them to resource types, the tests call them through the Analyzer protocol.
// No imports from the program: the pack must judge what was registered, not what
// the program meant to register.

/** Ports that must never face the internet: databases, caches, replication, the mesh. */
export const PRIVATE_PORTS: Record<number, string> = {
    3306: "mysql",
    33060: "mysqlx",
    5432: "postgres",
    6379: "redis",
    6380: "redis-tls",
    16379: "redis-cluster-bus",
    11211: "memcached",
    655: "tinc",
};

/** One inbound rule, whatever cloud spelled it. */
export interface Ingress {
    protocol: string;
    fromPort: number;
    toPort: number;
    sources: string[];
}

const WHOLE_INTERNET = new Set(["0.0.0.0/0", "::/0"]);

// Values a preview does not know yet arrive as a non-string marker; only known sources count.
function knownSources(...lists: unknown[]): string[] {
    return lists.flatMap((l) => (Array.isArray(l) ? l : [])).filter((s): s is string => typeof s === "string");
}

/** DigitalOcean: portRange "22", "8000-8100", "all" or "1-65535"; icmp has no ports. A rule with unknown ports is skipped. */
export function doIngress(rules: Array<{ protocol?: unknown; portRange?: unknown; sourceAddresses?: unknown }>): Ingress[] {
    const out: Ingress[] = [];
    for (const r of rules) {
        const ports = r?.portRange;
        if (ports !== undefined && typeof ports !== "string") continue;
        const range = !ports || ports === "all" ? "1-65535" : ports;
        const [from, to] = range.split("-").map(Number);
        out.push({ protocol: typeof r.protocol === "string" ? r.protocol : "tcp", fromPort: from, toPort: to ?? from, sources: knownSources(r.sourceAddresses) });
    }
    return out;
}

/** AWS: protocol "-1" (or "all") means every port. A rule with unknown ports is skipped. */
export function awsIngress(rules: Array<{ protocol?: unknown; fromPort?: unknown; toPort?: unknown; cidrBlocks?: unknown; ipv6CidrBlocks?: unknown }>): Ingress[] {
    const out: Ingress[] = [];
    for (const r of rules) {
        if (!r) continue;
        const all = r.protocol === "-1" || r.protocol === "all";
        const from = all ? 0 : r.fromPort;
        const to = all ? 65535 : (r.toPort ?? r.fromPort);
        if (typeof from !== "number" || typeof to !== "number") continue;
        out.push({ protocol: all ? "all" : typeof r.protocol === "string" ? r.protocol : "tcp", fromPort: from, toPort: to, sources: knownSources(r.cidrBlocks, r.ipv6CidrBlocks) });
    }
    return out;
}

function covers(r: Ingress, port: number): boolean {
    return r.protocol !== "icmp" && r.protocol !== "icmpv6" && r.fromPort <= port && port <= r.toPort;
}

/** Messages for private ports open to 0.0.0.0/0 or ::/0. */
export function publicPrivatePorts(rules: Ingress[]): string[] {
    const found: string[] = [];
    for (const r of rules) {
        const open = r.sources.filter((s) => WHOLE_INTERNET.has(s));
        if (open.length === 0) continue;
        for (const [port, service] of Object.entries(PRIVATE_PORTS)) {
            if (covers(r, Number(port))) found.push(`${service} port ${port} is open to ${open.join(" and ")}`);
        }
    }
    return found;
}

// --- address arithmetic, kept local so the pack stands alone ---
function toBig(address: string): { v: 4 | 6; n: bigint } | undefined {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(address)) {
        const parts = address.split(".").map(Number);
        if (parts.some((p) => p > 255)) return undefined;
        return { v: 4, n: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
    }
    if (!address.includes(":")) return undefined;
    const [head, tail = ""] = address.split("::");
    const h = head ? head.split(":") : [];
    const t = tail ? tail.split(":") : [];
    const groups = address.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
    if (groups.length !== 8) return undefined;
    return { v: 6, n: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || "0", 16)), 0n) };
}

function range(cidr: string): { v: 4 | 6; lo: bigint; hi: bigint } | undefined {
    const [addr, len] = cidr.split("/");
    const a = toBig(addr);
    if (!a) return undefined;
    const width = a.v === 4 ? 32 : 128;
    const prefix = len === undefined ? width : Number(len);
    const size = 1n << BigInt(width - prefix);
    const lo = (a.n / size) * size;
    return { v: a.v, lo, hi: lo + size - 1n };
}

/** True when every address of `inner` is inside `outer`. */
export function cidrWithin(inner: string, outer: string): boolean {
    const i = range(inner);
    const o = range(outer);
    return !!i && !!o && i.v === o.v && i.lo >= o.lo && i.hi <= o.hi;
}

/** Messages for SSH sources outside the admin ranges (without admin ranges: only the whole internet). */
export function sshOutsideAdmins(rules: Ingress[], adminCidrs: string[]): string[] {
    const found: string[] = [];
    for (const r of rules) {
        if (!covers(r, 22)) continue;
        for (const s of r.sources) {
            const allowed = adminCidrs.length > 0 ? adminCidrs.some((a) => cidrWithin(s, a)) : !WHOLE_INTERNET.has(s);
            if (!allowed) found.push(`SSH (port 22) is open to ${s}, ${adminCidrs.length > 0 ? `outside cutover:adminCidrs (${adminCidrs.join(", ")})` : "the whole internet"}`);
        }
    }
    return found;
}

/** Secret material written out in text that is stored and shown in plain: scripts, user data. */
const SECRET_PATTERNS: Array<[string, RegExp]> = [
    ["private key", /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/],
    ["database password", /IDENTIFIED\s+(WITH\s+\S+\s+)?BY\s+'(?!\$)[^']+'/i],
    ["database password", /\bPASSWORD\s*(=\s*)?'(?!\$)[^']+'/i],
    ["replication password", /\b(?:MASTER|SOURCE)_PASSWORD\s*=\s*'(?!\$)[^']+'/i],
    ["connection password", /\bpassword=(?![$'"])[^\s'"]+/i],
    ["redis password", /^\s*(requirepass|masterauth)\s+(?!\$)\S+/im],
    ["AWS access key", /\bAKIA[0-9A-Z]{16}\b/],
    ["API token", /\b(Authorization:\s*Bearer|X-Auth-Key:)\s*(?!\$)[A-Za-z0-9._-]{20,}/i],
];

export function plaintextSecrets(text: string): string[] {
    return SECRET_PATTERNS.filter(([, re]) => re.test(text)).map(([what]) => what);
}

/** Cloud user data may arrive base64-encoded (launch templates, userDataBase64). */
export function decodeUserData(value: string): string {
    if (/^[A-Za-z0-9+/=\s]+$/.test(value) && value.length % 4 === 0 && value.length > 0) {
        const text = Buffer.from(value, "base64").toString("utf8");
        if (/^(#cloud-config|#!)/.test(text)) return text;
    }
    return value;
}

/** DigitalOcean tags "site:<x>" and "role:<y>"; AWS tag keys "site" and "role". */
export function missingSiteRoleTags(tags: string[] | Record<string, string> | undefined): string[] {
    const missing: string[] = [];
    if (Array.isArray(tags)) {
        if (!tags.some((t) => /^site:.+/.test(t))) missing.push("site:<site>");
        if (!tags.some((t) => /^role:.+/.test(t))) missing.push("role:<role>");
    } else {
        if (!tags?.site) missing.push("site");
        if (!tags?.role) missing.push("role");
    }
    return missing;
}

export const BURSTABLE = /^(t2|t3|t3a|t4g)\.|^s-/;

/**
 * What a resource holds that must outlive it: a database or cache host, a data volume, a
 * managed database, a backup or media bucket; undefined for anything else (or tags unknown).
 */
export function statefulKind(type: string, props: Record<string, any>): string | undefined {
    const roleOf = (): unknown => (type === "digitalocean:index/droplet:Droplet"
        ? (Array.isArray(props.tags) ? props.tags : []).find((t: unknown) => typeof t === "string" && t.startsWith("role:"))?.slice(5)
        : props.tags?.role);
    switch (type) {
        case "digitalocean:index/droplet:Droplet":
        case "aws:ec2/instance:Instance": {
            const role = roleOf();
            return role === "db" ? "database host" : role === "cache" ? "cache host" : undefined;
        }
        case "digitalocean:index/volume:Volume":
        case "aws:ebs/volume:Volume":
            return "data volume";
        case "aws:rds/instance:Instance":
        case "aws:rds/cluster:Cluster":
            return "managed database";
        case "aws:s3/bucket:Bucket":
        case "aws:s3/bucketV2:BucketV2":
            return props.tags?.purpose === "backup" ? "backup bucket" : props.tags?.purpose === "media" ? "media bucket" : undefined;
        default:
            return undefined;
    }
}
