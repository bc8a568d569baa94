// The lab's plan as plain data: sites, hosts, addresses, namespace and link names.
// Addresses come from the documentation ranges and only ever exist inside the lab's
// namespaces: old site 192.0.2.0/24, new site 198.51.100.0/24, public segment
// 203.0.113.0/24 (where the operator and the clients sit).
import { PROBE_TABLE } from "../components/database/mysql";
import { Role } from "../components/types";
import type { CloudKind } from "./render";

/**
 * Labs side by side: CUTOVER_LAB_SLOT (1-9) names a lab of its own (namespaces, folder), so
 * lanes of lab tests run at once. Addresses are the same in every lab: each has its own router.
 */
export const LAB_SLOT = labSlot(process.env.CUTOVER_LAB_SLOT);
export const LAB_PREFIX = `cutover-lab${LAB_SLOT}`;

function labSlot(value: string | undefined): string {
    if (value === undefined || value === "") return "";
    if (!/^[1-9]$/.test(value)) throw new Error(`CUTOVER_LAB_SLOT: ${JSON.stringify(value)} is not allowed: a digit 1-9, or unset for the default lab`);
    return value;
}
export const ADMIN_CIDR = "203.0.113.0/28";

export interface LabSegment {
    name: string;
    cidr: string;
    /** The router's address on the segment, every host's default route. */
    gateway: string;
    /** Bridge in the router namespace. */
    bridge: string;
}

export interface LabHost {
    name: string;
    /** Site name, or "public" for the operator's machine. */
    site: string;
    role: Role | "operator" | "client";
    address: string;
    spare: boolean;
    netns: string;
    /** The router-side end of the host's link. */
    veth: string;
    /** A host the program creates in this cloud: booted when the program creates it, through cloud-init. */
    cloud?: CloudKind;
}

export interface LabPlan {
    routerNs: string;
    segments: LabSegment[];
    hosts: LabHost[];
    /** Where the operator runs SSH from (inside adminCidrs). */
    admin: LabHost;
    /** A machine on the internet outside adminCidrs: the site's visitors, the load generator. */
    client: LabHost;
}

export interface LabHostSpec {
    name: string;
    site: string;
    role: Role;
    /** Last octet on the site segment. */
    octet: number;
    /** Booted but not in the site's stack config: a host to add later (tests). */
    spare?: boolean;
    /** Left for the program to create in this cloud (not booted by the lab). */
    cloud?: CloudKind;
}

const SEGMENTS: Record<string, string> = { old: "192.0.2", new: "198.51.100", public: "203.0.113" };

/** Three hosts per site: what the rehearsal provisions and migrates. */
export const DEFAULT_HOSTS: LabHostSpec[] = [
    { name: "old-edge-1", site: "old", role: "edge", octet: 10 },
    { name: "old-app-1", site: "old", role: "app", octet: 11 },
    { name: "old-db-1", site: "old", role: "db", octet: 20 },
    { name: "new-edge-1", site: "new", role: "edge", octet: 10 },
    { name: "new-app-1", site: "new", role: "app", octet: 11 },
    { name: "new-db-1", site: "new", role: "db", octet: 20 },
    { name: "new-app-2", site: "new", role: "app", octet: 12, spare: true },
];

/** The reference stacks' shape in the lab: old on DigitalOcean, new on AWS, hosts the program creates. */
export const CLOUD_HOSTS: LabHostSpec[] = DEFAULT_HOSTS.filter((h) => !h.spare).map((h) => ({ ...h, cloud: h.site === "old" ? "digitalocean" : "aws" }));

export function labPlan(specs: LabHostSpec[] = DEFAULT_HOSTS): LabPlan {
    const segments: LabSegment[] = Object.entries(SEGMENTS).map(([name, base]) => ({
        name,
        cidr: `${base}.0/24`,
        gateway: `${base}.1`,
        bridge: `br-${name}`,
    }));
    for (const s of specs) {
        if (!SEGMENTS[s.site]) throw new Error(`lab host ${s.name}: site ${s.site} is not one of ${Object.keys(SEGMENTS).join(", ")}`);
    }
    const hosts: LabHost[] = specs.map((s, i) => ({
        name: s.name,
        site: s.site,
        role: s.role,
        address: `${SEGMENTS[s.site]}.${s.octet}`,
        spare: s.spare ?? false,
        netns: `${LAB_PREFIX}-${s.name}`,
        veth: `lv${i}`,
        ...(s.cloud ? { cloud: s.cloud } : {}),
    }));
    const admin: LabHost = { name: "operator", site: "public", role: "operator", address: `${SEGMENTS.public}.10`, spare: false, netns: `${LAB_PREFIX}-operator`, veth: `lv${specs.length}` };
    const client: LabHost = { name: "client", site: "public", role: "client", address: `${SEGMENTS.public}.100`, spare: false, netns: `${LAB_PREFIX}-client`, veth: `lv${specs.length + 1}` };
    return { routerNs: `${LAB_PREFIX}-router`, segments, hosts, admin, client };
}

export function segmentOf(plan: LabPlan, site: string): LabSegment {
    const s = plan.segments.find((x) => x.name === site);
    if (!s) throw new Error(`no lab segment ${site}`);
    return s;
}

const LAB_ZONE_ID = "0123456789abcdef0123456789abcdef";

/** The stack config a lab site is provisioned with: provider existing, the lab's hosts. */
export const LAB_MESH = { cidr: "198.18.0.0/15", siteRange: { old: "198.18.1.0/24", new: "198.18.2.0/24" } as Record<string, string> };

/** The lab site's hosts in its stack config (spare hosts are left out until a test adds them). */
export function labHostEntries(plan: LabPlan, site: string, withSpares = false): Array<Record<string, string>> {
    return plan.hosts
        .filter((h) => h.site === site && (withSpares || !h.spare))
        .map((h) => ({ name: h.name, role: h.role, publicAddress: h.address, privateAddress: h.address }));
}

export function labStackConfig(plan: LabPlan, site: string, peerStack?: string): Record<string, unknown> {
    return {
        "cutover:site": site,
        "cutover:provider": "existing",
        "cutover:adminCidrs": [ADMIN_CIDR],
        // The new site logs in as admin with passwordless sudo, as on Debian's AWS images.
        ...(site === "new" ? { "cutover:sshUser": "admin" } : {}),
        "cutover:network": { cidr: segmentOf(plan, site).cidr },
        "cutover:sshPrivateKey": { secure: "supplied-by-the-lab-runtime" },
        "cutover:hosts": labHostEntries(plan, site),
        "cutover:edge": { proxied: false, manage: true },
        "cutover:probe": true,
        "cutover:database": { engine: "mariadb", phase: site === "old" ? "primary" : "replica" },
        "cutover:mesh": { cidr: LAB_MESH.cidr, siteRange: LAB_MESH.siteRange[site] },
        // Cloudflare is mocked in the lab; the new stack owns the public names and the flip.
        "cutover:dns": { zoneId: LAB_ZONE_ID, zone: "lab.example.com", ...(site === "new" ? { names: ["@", "www"] } : {}) },
        ...(site === "new" ? { "cutover:live": "old", "cutover:runbook": { parity: [PROBE_TABLE] } } : {}),
        ...(peerStack ? { "cutover:peer": `organization/cutover/${peerStack}` } : {}),
    };
}

export const LAB_CLOUD_STACKS = { old: "lab-cloud-old", new: "lab-cloud-new" } as const;

/**
 * The stack config of a lab site whose hosts the program creates: old on DigitalOcean, new
 * on AWS (the reference stacks' shape), each site's network the lab's segment. The edges are
 * not proxied (the lab's clients are not Cloudflare).
 */
export function cloudLabStackConfig(plan: LabPlan, site: string, peerStack?: string): Record<string, unknown> {
    const aws = site === "new";
    const size = (s: string, a: string) => ({ count: 1, size: aws ? a : s });
    return {
        "cutover:site": site,
        "cutover:provider": aws ? "aws" : "digitalocean",
        "cutover:region": aws ? "eu-west-1" : "ams3",
        "cutover:adminCidrs": [ADMIN_CIDR],
        "cutover:network": { cidr: segmentOf(plan, site).cidr },
        "cutover:pools": { edge: size("s-1vcpu-1gb", "t3.small"), app: size("s-2vcpu-2gb", "t3.medium"), db: size("s-2vcpu-4gb", "r6i.large") },
        "cutover:edge": { proxied: false },
        "cutover:probe": true,
        "cutover:database": { engine: "mariadb", phase: aws ? "replica" : "primary" },
        "cutover:mesh": { cidr: LAB_MESH.cidr, siteRange: LAB_MESH.siteRange[site] },
        "cutover:dns": { zoneId: LAB_ZONE_ID, zone: "lab.example.com", ...(aws ? { names: ["@", "www"] } : {}) },
        ...(aws ? { "cutover:live": "old", "cutover:runbook": { parity: [PROBE_TABLE] } } : {}),
        ...(peerStack ? { "cutover:peer": `organization/cutover/${peerStack}` } : {}),
    };
}

/**
 * Adido's new site in the lab as a cloud: an auto-scaled app tier on AWS, the group's
 * instances launched into these slots (lab/cloud.ts scaleGroup), nothing else on the site.
 */
export const AUTOSCALED_HOSTS: LabHostSpec[] = [1, 2].map((n) => ({ name: `new-app-asg-${n}`, site: "new", role: "app", octet: 30 + n, cloud: "aws" }));

export const LAB_AUTOSCALED_STACK = "lab-asg";

/** The stack config of that site: two instances (the group's min and max), the operators' keys given. */
export function autoscaledLabStackConfig(plan: LabPlan, sshPublicKeys: string[]): Record<string, unknown> {
    return {
        "cutover:site": "new",
        "cutover:provider": "aws",
        "cutover:region": "eu-west-1",
        "cutover:adminCidrs": [ADMIN_CIDR],
        "cutover:network": { cidr: segmentOf(plan, "new").cidr },
        "cutover:pools": { app: { count: 2, size: "t3.medium", autoscaling: { min: 2, max: 2 } } },
        "cutover:sshPublicKeys": sshPublicKeys,
        "cutover:edge": { proxied: false },
        "cutover:dns": { zoneId: LAB_ZONE_ID, zone: "lab.example.com" },
    };
}
