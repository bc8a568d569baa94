// The stack config, validated once into one typed object before any resource exists.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { containsAddress, hostAddress, isWholeInternet, overlaps, parseAddress, parseCidr } from "./cidr";
import type { RunbookSettings } from "./runbook/render";
import type { BackupSettings } from "./backup";
import type { MediaCredentials, MediaPlan, MediaRemote } from "./media";
import type { MonitoringSettings } from "./monitoring";
import type { ManagedDbSettings } from "./database/managed";
import { CACHE_PHASES, CachePhase, DB_ENGINES, DB_PHASES, DbPhase, PROVIDERS, ROLES, Provider, Role, DbEngine } from "./types";

const NAMESPACE = "cutover";

/** A user mistake in stack config. RunError makes Pulumi print the message without a stack trace. */
export class ConfigError extends pulumi.RunError {
    constructor(public readonly problems: string[]) {
        const text = `invalid stack config:\n${problems.map((p) => `  ${p}`).join("\n")}`;
        super(text);
        this.name = "ConfigError";
        // Thrown inside an output (a check against the peer), the SDK prefixes the message once per
        // property it was nested in ("error serializing property ..."): a config error reads the same
        // wherever it was found.
        Object.defineProperty(this, "message", { get: () => text, set: () => undefined, enumerable: false, configurable: false });
    }
}

const NAME = /^[a-z][a-z0-9-]{0,30}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const RECORD_NAME = /^(@|\*|([a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9-]{0,61}[a-z0-9])?)*)$/;
const name = z.string().regex(NAME, { message: "a lower-case name: letters, digits and '-', starting with a letter, at most 31 characters" });

const cidr = (what: string) =>
    z.string().refine((s) => parseCidr(s) !== undefined, { message: `${what} CIDR such as 10.10.0.0/16, host bits zero` });

const address = z.string().refine((s) => parseAddress(s) !== undefined, { message: "an IPv4 or IPv6 address" });

const port = z.number().int().min(1).max(65535);
/** An entry of cutover:adopt.close: "[host:]port/proto" or "all". */
const ADOPT_CLOSE = /^(all|([a-z][a-z0-9-]{0,30}:)?\d{1,5}\/(tcp|udp))$/;

const poolSchema = z.strictObject({
    /** How many hosts of this role. */
    count: z.number().int().min(1).max(1000),
    /** Droplet size slug or EC2 instance type. */
    size: z.string().min(1),
    /** aws only, app role only: a stateless web tier in an auto-scaling group behind a load balancer. */
    autoscaling: z.strictObject({ min: z.number().int().min(1), max: z.number().int().min(1) }).optional(),
    /** aws: the root disk in GB (db and cache hosts keep their data on it; default 100 there). */
    rootGb: z.number().int().min(8).max(16384).optional(),
    /** digitalocean, db and cache roles: the data volume in GB (default 100). */
    dataGb: z.number().int().min(1).max(16384).optional(),
});

const existingHostSchema = z.strictObject({
    name,
    role: z.enum(ROLES),
    publicAddress: address,
    privateAddress: address,
    user: z.string().min(1).optional(),
    port: port.optional(),
    /** Pins the host's mesh address (default: from its role and position among that role's hosts). */
    meshAddress: address.optional(),
});

const remoteSchema = z.discriminatedUnion("type", [
    z.strictObject({
        type: z.literal("s3"),
        /** rclone's S3 provider: AWS, DigitalOcean (Spaces) or Other (any S3-compatible store). */
        provider: z.enum(["AWS", "DigitalOcean", "Other"]).optional(),
        endpoint: z.string().regex(/^[a-z0-9.-]+(:\d+)?$/, { message: "a host name such as ams3.digitaloceanspaces.com" }).optional(),
        region: z.string().min(1).optional(),
        bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: "a bucket name" }),
        path: z.string().regex(/^[A-Za-z0-9._\/-]*$/, { message: "a folder inside the bucket" }).optional(),
    }),
    z.strictObject({
        type: z.literal("sftp"),
        host: z.string().min(1),
        user: z.string().min(1).optional(),
        port: port.optional(),
        path: z.string().regex(/^\/[A-Za-z0-9._\/-]*$/, { message: "an absolute path" }),
    }),
]);

const credentialsSchema = z.union([
    z.strictObject({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) }),
    z.strictObject({ privateKey: z.string().min(1) }),
]);

const schema = z.strictObject({
    /** This stack's site name: what `cutover:live` and the peer call it. */
    site: name,
    provider: z.enum(PROVIDERS),
    /** Cloud region (DigitalOcean slug or AWS region). Not used by `existing`. */
    region: z.string().min(1).optional(),
    /** Who may reach SSH. */
    adminCidrs: z.array(cidr("an IPv4 or IPv6")).min(1),
    /** The site's private network: the VPC range, or the range existing hosts' private addresses live in. */
    network: z.strictObject({ cidr: cidr("a private IPv4") }),
    /** Hosts to create per role (digitalocean, aws). */
    pools: z.partialRecord(z.enum(ROLES), poolSchema).optional(),
    /** Hosts that already exist (existing). */
    hosts: z.array(existingHostSchema).min(1).optional(),
    /** Jump host for existing hosts (the command provider's `proxy`). */
    bastion: z.strictObject({ host: z.string().min(1), user: z.string().min(1).optional(), port: port.optional() }).optional(),
    /** Login user for the program's SSH connections. */
    sshUser: z.string().min(1).optional(),
    /** Admin public keys installed on created hosts. */
    sshPublicKeys: z.array(z.string().regex(/^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$/, { message: "an OpenSSH public key line" })).optional(),
    /** Private key for existing hosts (a Pulumi secret). Created hosts get a program-owned deploy key. */
    sshPrivateKey: z.string().min(1).optional(),
    /** Image: DigitalOcean slug or AWS AMI id. Defaults to Debian 12. */
    image: z.string().min(1).optional(),
    /** The other site's stack, "org/project/stack". */
    peer: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, { message: "a stack reference \"org/project/stack\"" }).optional(),
    /** Whether the edge is reached through Cloudflare's proxy (then HTTP/HTTPS is admitted only from Cloudflare). */
    edge: z
        .strictObject({
            proxied: z.boolean().optional(),
            /** Run the program's HAProxy on the edge hosts (default: on created hosts; off on existing ones, whose edge config is not ours to replace). */
            manage: z.boolean().optional(),
        })
        .optional(),
    /**
     * Existing hosts: what the first run's inventory saw listening beyond the role's ports stays
     * reachable (see components/inventory/adopt.ts) until it is named here: "<port>/<tcp|udp>" on
     * every host, "<host>:<port>/<tcp|udp>" on one, or "all".
     */
    adopt: z.strictObject({ close: z.array(z.string().regex(ADOPT_CLOSE, { message: 'a port to close: "2368/tcp", "old-app-1:2368/tcp" or "all"' })) }).optional(),
    /** The site's database and its part in the migration (see "Data: replication phases"). */
    database: z
        .strictObject({
            engine: z.enum(DB_ENGINES),
            phase: z.enum(DB_PHASES).optional(),
            /** aws, mysql: the database is RDS instead of a db host (replicating through a worker host, see components/database/rds.ts). */
            managed: z
                .strictObject({
                    instanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, { message: "an RDS instance class such as db.r6g.large" }),
                    storageGb: z.number().int().min(20).max(65536),
                    engineVersion: z.string().regex(/^\d+\.\d+(\.\d+)?$/, { message: "a MySQL version such as 8.0" }).optional(),
                    multiAz: z.boolean().optional(),
                })
                .optional(),
        })
        .optional(),
    /** Redis, on the site's cache host (or its db host when it has none), replicated through stunnel. */
    cache: z.strictObject({ engine: z.literal("redis"), phase: z.enum(CACHE_PHASES).optional() }).optional(),
    /** Rehearsals: run the probe app on the app hosts (see components/app/probe.ts). */
    // The engine hands top-level booleans over as text.
    probe: z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean()).optional(),
    /** The site that serves: this stack's site or the peer's. Flipping it is the cutover. */
    live: name.optional(),
    /** How the runbook that a flip of `live` runs behaves (see README, "Cutover runbook"). */
    runbook: z
        .strictObject({
            freezeMs: z.number().int().min(500).max(30000).optional(),
            catchupMs: z.number().int().min(100).max(30000).optional(),
            maxLagSeconds: z.number().int().min(0).max(3600).optional(),
            postponeFile: z.string().regex(/^\/[A-Za-z0-9._\/-]+$/, { message: "an absolute path" }).optional(),
            postponeMinutes: z.number().int().min(0).max(1440).optional(),
            precheck: z.string().min(1).optional(),
            validate: z.string().min(1).optional(),
            parity: z.array(z.string().regex(/^[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+$/, { message: "a table as db.table" })).optional(),
            attempt: z.number().int().min(1).optional(),
        })
        .optional(),
    /**
     * Cloudflare records. Every stack with `dns` keeps its site's origin name
     * (<site>.<origin>.<zone>: A per edge host, or CNAME to its load balancer); the stack
     * that also lists `names` owns the public names, which point at the live site's origin.
     */
    dns: z
        .strictObject({
            zoneId: z.string().regex(/^[0-9a-f]{32}$/, { message: "a Cloudflare zone id (32 hex digits)" }),
            zone: z.string().regex(DOMAIN, { message: "a domain name such as example.com" }),
            /** Names that follow `live`: "@" is the apex, "www", and per-customer names. */
            names: z.array(z.string().regex(RECORD_NAME, { message: "\"@\" or a name inside the zone such as www or shop-1" })).min(1).optional(),
            /** Prefix of the per-site origin names: <site>.<origin>.<zone>. */
            origin: z.string().regex(RECORD_NAME, { message: "a name inside the zone" }).optional(),
            /** TTL in seconds of records that are not proxied (proxied ones use Cloudflare's automatic TTL). */
            ttl: z.number().int().min(30).max(86400).optional(),
            /** Existing Cloudflare record ids to adopt, by name: imported, never recreated. */
            adopt: z.record(z.string(), z.string().regex(/^[0-9a-f]{32}$/, { message: "a Cloudflare record id (32 hex digits)" })).optional(),
        })
        .optional(),
    /** Object storage migration with rclone (see components/media). */
    media: z
        .strictObject({
            /** The host of this stack that runs rclone. */
            host: name,
            source: remoteSchema,
            /** Default with provider aws: the stack's own media bucket. */
            target: remoteSchema.optional(),
            transfers: z.number().int().min(1).max(256).optional(),
            checkers: z.number().int().min(1).max(512).optional(),
            retries: z.number().int().min(1).max(20).optional(),
            lowLevelRetries: z.number().int().min(1).max(100).optional(),
            rewrite: z.strictObject({ command: z.string().min(1), from: z.url(), to: z.url() }).optional(),
            run: z.number().int().min(1).optional(),
        })
        .optional(),
    /** Credentials of the media remotes (a secret): S3 keys, or an SFTP private key, per side. */
    mediaCredentials: z
        .strictObject({ source: credentialsSchema.optional(), target: credentialsSchema.optional() })
        .optional(),
    /** Encrypted off-site backups of the site's database into an S3 bucket the stack owns. */
    backups: z
        .strictObject({
            /** AWS region of the bucket (any provider's site can back up to S3). */
            region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { message: "an AWS region such as eu-west-1" }),
            /** When the job runs (cron fields, host time). */
            schedule: z.string().regex(/^(\S+\s+){4}\S+$/, { message: "five cron fields such as \"30 2 * * *\"" }).optional(),
            /** Days a backup is kept (then expires, also as an older version). */
            keepDays: z.number().int().min(1).max(3650).optional(),
        })
        .optional(),
    /** Alerts created before anything else, and uptime checks of the edge (see components/monitoring). */
    monitoring: z
        .strictObject({
            /** Who is alerted. */
            emails: z.array(z.email()).min(1),
            cpuPercent: z.number().int().min(10).max(100).optional(),
            memoryPercent: z.number().int().min(10).max(100).optional(),
            diskPercent: z.number().int().min(10).max(100).optional(),
            /** provider existing: the Cloudflare account whose health checks watch the edge. */
            cloudflareAccountId: z.string().regex(/^[0-9a-f]{32}$/, { message: "a Cloudflare account id (32 hex digits)" }).optional(),
            /** Path the uptime checks request on the edge. */
            path: z.string().regex(/^\/[\x21-\x7e]*$/, { message: "a URL path such as /healthz" }).optional(),
        })
        .optional(),
    /** The tinc mesh across both sites: the whole range, and this site's part of it. */
    mesh: z
        .strictObject({
            cidr: cidr("an IPv4"),
            siteRange: cidr("an IPv4"),
            port: port.optional(),
            hubsPerSite: z.number().int().min(1).max(5).optional(),
        })
        .optional(),
});

type Raw = z.infer<typeof schema>;

export interface PoolSpec {
    count: number;
    size: string;
    autoscaling?: { min: number; max: number };
    rootGb?: number;
    dataGb?: number;
}

export interface ExistingHostSpec {
    name: string;
    role: Role;
    publicAddress: string;
    privateAddress: string;
    user: string;
    port: number;
}

/** The validated config every component is built from. */
export interface SiteConfig {
    stack: string;
    site: string;
    provider: Provider;
    region: string;
    adminCidrs: string[];
    networkCidr: string;
    pools: Partial<Record<Role, PoolSpec>>;
    existingHosts: ExistingHostSpec[];
    bastion?: { host: string; user: string; port: number };
    sshUser: string;
    sshPublicKeys: string[];
    /** Secret: only set for `existing`. */
    sshPrivateKey?: pulumi.Output<string>;
    image: string;
    peer?: string;
    /** HTTP/HTTPS admitted only from Cloudflare. Existing edges: only when the operator says so. */
    edgeProxied: boolean;
    /** Existing hosts: the listeners the inventory saw that may be closed (cutover:adopt.close). */
    adoptClose: string[];
    /** Whether the program runs HAProxy on the edge hosts. */
    edgeManaged: boolean;
    dbEngine: DbEngine;
    /** This site's database role in the migration. */
    dbPhase: DbPhase;
    /** Redis and its role in the migration, when the site has one. */
    cache?: { engine: "redis"; phase: CachePhase; host: string };
    mesh?: MeshPlan;
    /** Run the rehearsal probe app on the app hosts. */
    probe: boolean;
    /** The site that serves (only with `dns`). */
    live?: string;
    /** The cutover runbook's settings (used by the stack that owns `live`). */
    runbook: RunbookSettings;
    dns?: DnsPlan;
    /** Object storage migration: which host runs it, the plan (no target: the stack's own bucket). */
    media?: { host: string; plan: Omit<MediaPlan, "target"> & { target?: MediaRemote }; credentials: { source?: MediaCredentials; target?: MediaCredentials } };
    backups?: BackupSettings;
    monitoring?: MonitoringSettings;
    /** The database is RDS (aws), relayed by the first worker host. */
    managedDb?: ManagedDbSettings;
}

export interface DnsPlan {
    zoneId: string;
    zone: string;
    /** Public names this stack owns (empty: it keeps only its origin name). */
    names: string[];
    origin: string;
    ttl: number;
    adopt: Record<string, string>;
}

export interface MeshPlan {
    cidr: string;
    siteRange: string;
    port: number;
    hubsPerSite: number;
    /** Mesh address per host name. */
    addresses: Record<string, string>;
}

/**
 * Stable mesh addresses: a block per role inside the site range, and the host's position
 * among that role's hosts. Adding a host never renumbers the others. The first 256
 * addresses keep the blocks of a /24 (what every site had before larger ranges were
 * planned); a larger siteRange gives each role, in ROLES order, an equal slice of the rest
 * for its hosts past the /24 block.
 */
export const MESH_ROLE_BASE: Record<Role, number> = { edge: 10, app: 30, worker: 70, db: 110, cache: 130 };
export const MESH_ROLE_ROOM: Record<Role, number> = { edge: 20, app: 40, worker: 40, db: 20, cache: 20 };

/** The offset of a role's n-th host (from 0) in a site range of `size` addresses, or undefined when it has no room. */
export function meshOffset(role: Role, n: number, size: number): number | undefined {
    if (n < MESH_ROLE_ROOM[role]) return MESH_ROLE_BASE[role] + n;
    const slice = meshOverflowRoom(size);
    const k = n - MESH_ROLE_ROOM[role];
    return k < slice ? 256 + ROLES.indexOf(role) * slice + k : undefined;
}

/** Hosts a role has room for past its /24 block, in a site range of `size` addresses (its last address left out). */
export function meshOverflowRoom(size: number): number {
    return Math.max(0, Math.floor((size - 256 - 1) / ROLES.length));
}

function meshAddresses(raw: Raw, range: string): { addresses: Record<string, string>; problems: string[] } {
    const base = parseCidr(range)!;
    const addresses: Record<string, string> = {};
    const problems: string[] = [];
    const perRole = new Map<Role, number>();
    const hosts: Array<{ name: string; role: Role; pinned?: string; path: PropertyKey[] }> =
        raw.provider === "existing"
            ? (raw.hosts ?? []).map((h, i) => ({ name: h.name, role: h.role, pinned: h.meshAddress, path: ["hosts", i, "meshAddress"] }))
            : ROLES.flatMap((role) => Array.from({ length: raw.pools?.[role]?.count ?? 0 }, (_, i) => ({ name: `${raw.site}-${role}-${i + 1}`, role, path: ["pools", role, "count"] })));
    const used = new Map<string, string>();
    for (const h of hosts) {
        const n = perRole.get(h.role) ?? 0;
        perRole.set(h.role, n + 1);
        let a = h.pinned;
        if (!a) {
            const size = 2 ** (32 - base.prefix);
            const offset = meshOffset(h.role, n, size);
            if (offset === undefined) {
                const room = MESH_ROLE_ROOM[h.role] + meshOverflowRoom(size);
                problems.push(`${keyPath(h.path)}: host ${h.name} is not allowed: the mesh plan of ${range} has room for ${room} ${h.role} hosts; use a larger cutover:mesh.siteRange (a /20 holds ${MESH_ROLE_ROOM[h.role] + meshOverflowRoom(4096)}) or pin meshAddress`);
                continue;
            }
            a = hostAddress(base, offset);
        }
        if (!containsAddress(base, a)) problems.push(`${keyPath(h.path)}: ${showValue(a)} is not allowed: must be inside cutover:mesh.siteRange ${range}`);
        const other = used.get(a);
        if (other) problems.push(`${keyPath(h.path)}: ${showValue(a)} is not allowed: already the mesh address of ${other}`);
        used.set(a, h.name);
        addresses[h.name] = a;
    }
    return { addresses, problems };
}

/** Redis runs on the site's first cache host, or on its first db host when it has no cache host. */
/** Host names of a role, from config alone. */
function namesOf(raw: Raw, role: Role): string[] {
    return raw.provider === "existing"
        ? (raw.hosts ?? []).filter((h) => h.role === role).map((h) => h.name)
        : Array.from({ length: raw.pools?.[role]?.count ?? 0 }, (_, i) => `${raw.site}-${role}-${i + 1}`);
}

function hasRole(raw: Raw, role: Role): boolean {
    return namesOf(raw, role).length > 0;
}

function cacheHostOf(raw: Raw): string | undefined {
    return namesOf(raw, "cache")[0] ?? namesOf(raw, "db")[0];
}

const DEFAULT_IMAGE: Record<Provider, string> = {
    digitalocean: "debian-12-x64",
    aws: "", // looked up: the newest official Debian 12 AMI of the region
    existing: "",
};
/**
 * How long the outgoing database stays frozen at most. PostgreSQL's is longer: its freeze (a
 * clean stop with a checkpoint) and its switch are two SSH sessions, and the switch promotes
 * only while more than a second of the freeze is left (measured in the lab: 2-2.5 s from the
 * stop to the promotion on a loaded 2-core machine).
 */
/** HTTP/HTTPS admitted only from Cloudflare: the default on created hosts; an existing edge may serve visitors directly. */
function edgeProxiedOf(raw: Raw): boolean {
    return raw.edge?.proxied ?? raw.provider !== "existing";
}

function defaultFreezeMs(raw: Raw): number {
    return raw.database?.engine === "postgres" ? 5000 : 3000;
}

/**
 * How much longer than the freeze the edges hold writes: a MariaDB/MySQL freeze ends by an
 * event (writable at once); a PostgreSQL one by its watchdog restarting the server, which
 * takes seconds on a loaded host, and held writes released before it answers would fail.
 */
function holdMarginMs(raw: Raw): number {
    return raw.database?.engine === "postgres" ? 5000 : 2000;
}

const DEFAULT_USER: Record<Provider, string> = { digitalocean: "root", aws: "admin", existing: "root" };

/** A private key (PEM, or an OpenSSH key's base64), wherever it was pasted. */
const PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|b3BlbnNzaC1rZXktdjE/;

function showValue(value: unknown): string {
    if (value === undefined) return "(missing)";
    const text = JSON.stringify(value);
    // Pasted into the wrong key, a private key is still never echoed.
    return PRIVATE_KEY.test(text) ? "(a private key: value hidden)" : text;
}

function keyPath(path: PropertyKey[]): string {
    const [top, ...rest] = path;
    return `${NAMESPACE}:${String(top ?? "")}${rest.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("")}`;
}

// Finds the object schema at a path so an unknown-key error can list the keys that are allowed.
function allowedKeys(path: PropertyKey[]): string[] {
    let node: z.ZodType = schema;
    for (const step of path) {
        while (node instanceof z.ZodOptional) node = node.unwrap() as z.ZodType;
        if (node instanceof z.ZodObject) node = node.shape[String(step)];
        else if (node instanceof z.ZodArray) node = node.element as z.ZodType;
        else if (node instanceof z.ZodRecord) node = node.valueType as z.ZodType;
        if (!node) return [];
    }
    while (node instanceof z.ZodOptional) node = node.unwrap() as z.ZodType;
    if (node instanceof z.ZodRecord) return [...ROLES];
    return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

function describeIssue(issue: z.core.$ZodIssue & { input?: unknown }, secretTop: Set<string>): string {
    const key = keyPath(issue.path);
    // A secret's value never reaches a message, however it is malformed.
    const show = (v: unknown) => (secretTop.has(String(issue.path[0])) ? "(secret value hidden)" : showValue(v));
    switch (issue.code) {
        case "invalid_value":
            return `${key}: ${show(issue.input)} is not one of ${issue.values.join(", ")}`;
        case "unrecognized_keys":
            return issue.keys
                .map((k) => `${keyPath([...issue.path, k])}: unknown key; allowed here: ${allowedKeys(issue.path).join(", ")}`)
                .join("\n  ");
        case "invalid_key":
            return `${keyPath(issue.path)}: ${show(issue.input)} is not a role; allowed: ${ROLES.join(", ")}`;
        case "too_small":
            if (issue.origin === "array") return `${key}: ${show(issue.input)} needs at least ${issue.minimum} entr${issue.minimum === 1 ? "y" : "ies"}`;
            return `${key}: ${show(issue.input)} is too small: must be at least ${issue.minimum}`;
        case "too_big":
            return `${key}: ${show(issue.input)} is too big: must be at most ${issue.maximum}`;
        case "invalid_type":
            if (issue.input === undefined) return `${key}: is required (${issue.expected})`;
            if (issue.expected === "int") return `${key}: ${show(issue.input)} is not allowed: must be a whole number`;
            return `${key}: ${show(issue.input)} is not allowed: must be ${issue.expected === "object" ? "an object" : issue.expected === "array" ? "a list" : `a ${issue.expected}`}`;
        default:
            return `${key}: ${show(issue.input)} is not allowed: must be ${issue.message}`;
    }
}

// Structured values reach the program as JSON text; plain strings stay as they are.
function decode(text: string): unknown {
    const t = text.trim();
    if (t.startsWith("{") || t.startsWith("[")) {
        try {
            return JSON.parse(t);
        } catch {
            return text;
        }
    }
    return text;
}

/**
 * With schema errors, the cross-key rules still run over the keys that are valid, so one run
 * lists every problem (one fix cycle, not two). Rules that involve a broken key are left out:
 * they would report it missing. When a required key is broken, none can run.
 */
function crossCheckTheRest(mine: Record<string, unknown>, issues: z.core.$ZodIssue[], secrets: Set<string>, stack: string): string[] {
    const broken = new Set(issues.map((i) => String(i.path[0] ?? "")));
    if (broken.has("")) return [];
    const rest = schema.safeParse(Object.fromEntries(Object.entries(mine).filter(([k]) => !broken.has(k))));
    if (!rest.success) return [];
    // Top-level keys are plain identifiers: no regex escaping needed.
    const mentions = [...broken].map((k) => new RegExp(`${NAMESPACE}:${k}\\b`));
    return crossCheck(rest.data, secrets, stack).filter((p) => !mentions.some((m) => m.test(p)));
}

/** Rules that span keys: each returns messages in the same key/value/allowed shape. */
function crossCheck(raw: Raw, secretKeys: Set<string>, stack: string): string[] {
    const show = showValue;
    const problems: string[] = [];
    const cloud = raw.provider !== "existing";
    const network = parseCidr(raw.network.cidr)!;

    if (network.version !== 4 || network.prefix < 16 || network.prefix > 24) {
        problems.push(`${keyPath(["network", "cidr"])}: ${show(raw.network.cidr)} is not allowed: must be an IPv4 range from /16 to /24`);
    }
    for (const [i, c] of raw.adminCidrs.entries()) {
        if (isWholeInternet(c)) {
            problems.push(`${keyPath(["adminCidrs", i])}: ${show(c)} is not allowed: SSH must not be open to the whole internet; name your office/VPN ranges`);
        }
    }
    if (cloud) {
        if (!raw.region) problems.push(`${keyPath(["region"])}: is required with provider ${raw.provider}`);
        if (!raw.pools || Object.keys(raw.pools).length === 0) problems.push(`${keyPath(["pools"])}: is required with provider ${raw.provider} (hosts to create per role)`);
        if (raw.hosts) problems.push(`${keyPath(["hosts"])}: is not allowed with provider ${raw.provider}; use cutover:pools, or provider existing`);
        if (raw.bastion) problems.push(`${keyPath(["bastion"])}: is not allowed with provider ${raw.provider}; only existing hosts are reached through a bastion`);
        if (raw.adopt) problems.push(`${keyPath(["adopt"])}: is not allowed with provider ${raw.provider}; only existing hosts are adopted (the program creates these)`);
        const pools = raw.pools ?? {};
        for (const [role, pool] of Object.entries(pools)) {
            if (pool?.rootGb !== undefined && raw.provider !== "aws") {
                problems.push(`${keyPath(["pools", role, "rootGb"])}: ${show(pool.rootGb)} is not allowed with provider ${raw.provider}: a droplet's disk comes with its size; db and cache droplets keep their data on a volume (dataGb)`);
            }
            if (pool?.dataGb !== undefined && (raw.provider !== "digitalocean" || (role !== "db" && role !== "cache"))) {
                problems.push(`${keyPath(["pools", role, "dataGb"])}: ${show(pool.dataGb)} is not allowed here: only db and cache droplets (provider digitalocean) have a data volume; on aws set rootGb`);
            }
            if (!pool?.autoscaling) continue;
            if (raw.provider !== "aws" || role !== "app") {
                problems.push(`${keyPath(["pools", role, "autoscaling"])}: is not allowed: only the app pool of provider aws auto-scales`);
            } else if (pool.autoscaling.min > pool.autoscaling.max) {
                problems.push(`${keyPath(["pools", role, "autoscaling"])}: ${show(pool.autoscaling)} is not allowed: min must not exceed max`);
            } else if (!raw.dns) {
                problems.push(`${keyPath(["pools", role, "autoscaling"])}: needs cutover:dns: the load balancer's HTTPS certificate (the zone and *.zone) is validated by a record in that Cloudflare zone`);
            }
        }
        if (raw.pools && !pools.edge && !pools.app?.autoscaling) {
            problems.push(`${keyPath(["pools"])}: ${show(Object.keys(pools))} has no edge: add an edge pool, or an auto-scaled app pool (aws) whose load balancer is the edge`);
        }
    } else {
        if (raw.region) problems.push(`${keyPath(["region"])}: ${show(raw.region)} is not allowed with provider existing`);
        if (raw.pools) problems.push(`${keyPath(["pools"])}: is not allowed with provider existing; list the hosts in cutover:hosts`);
        if (!raw.hosts) problems.push(`${keyPath(["hosts"])}: is required with provider existing (name, role, publicAddress, privateAddress)`);
        if (!raw.sshPrivateKey) problems.push(`${keyPath(["sshPrivateKey"])}: is required with provider existing: pulumi config set --secret cutover:sshPrivateKey < key`);
        const hosts = raw.hosts ?? [];
        for (const [i, entry] of (raw.adopt?.close ?? []).entries()) {
            const [, host, port] = /^(?:([^:]+):)?(\d+)\//.exec(entry) ?? []; // "all" has neither
            if (host && !hosts.some((h) => h.name === host)) {
                problems.push(`${keyPath(["adopt", "close", i])}: ${show(entry)} is not allowed: no host ${host} in cutover:hosts (${hosts.map((h) => h.name).join(", ")})`);
            }
            if (port && (Number(port) < 1 || Number(port) > 65535)) problems.push(`${keyPath(["adopt", "close", i])}: ${show(entry)} is not allowed: the port must be 1 to 65535`);
        }
        const seenName = new Map<string, number>();
        const seenAddress = new Map<string, number>();
        for (const [i, h] of hosts.entries()) {
            const first = seenName.get(h.name);
            if (first !== undefined) problems.push(`${keyPath(["hosts", i, "name"])}: ${show(h.name)} is not allowed: duplicate of cutover:hosts[${first}].name; host names must be unique`);
            else seenName.set(h.name, i);
            // A host may use one address for both (a dedicated server without a private network).
            for (const field of ["publicAddress", "privateAddress"] as const) {
                const prev = seenAddress.get(h[field]);
                if (prev !== undefined && prev !== i) problems.push(`${keyPath(["hosts", i, field])}: ${show(h[field])} is not allowed: already used by cutover:hosts[${prev}]`);
                else seenAddress.set(h[field], i);
            }
            if (!containsAddress(network, h.privateAddress)) {
                problems.push(`${keyPath(["hosts", i, "privateAddress"])}: ${show(h.privateAddress)} is not allowed: must be inside cutover:network.cidr ${raw.network.cidr}`);
            }
        }
        if (hosts.length > 0 && !hosts.some((h) => h.role === "edge")) {
            problems.push(`${keyPath(["hosts"])}: has no host with role edge; one is needed for DNS to point at`);
        }
    }
    if (raw.mesh) {
        const whole = parseCidr(raw.mesh.cidr)!;
        const mine = parseCidr(raw.mesh.siteRange)!;
        if (whole.version !== 4 || mine.version !== 4) problems.push(`${keyPath(["mesh"])}: ${show(raw.mesh)} is not allowed: the mesh is IPv4`);
        else if (!(containsAddress(whole, hostAddress(mine, 0)) && mine.prefix >= whole.prefix)) {
            problems.push(`${keyPath(["mesh", "siteRange"])}: ${show(raw.mesh.siteRange)} is not allowed: must be inside cutover:mesh.cidr ${raw.mesh.cidr}`);
        }
        if (mine.prefix > 24) problems.push(`${keyPath(["mesh", "siteRange"])}: ${show(raw.mesh.siteRange)} is not allowed: must be /24 or larger (room for every role)`);
        if (overlaps(whole, network)) problems.push(`${keyPath(["mesh", "cidr"])}: ${show(raw.mesh.cidr)} is not allowed: it overlaps cutover:network.cidr ${raw.network.cidr}`);
        if (problems.length === 0) problems.push(...meshAddresses(raw, raw.mesh.siteRange).problems);
    } else if (raw.hosts?.some((h) => h.meshAddress)) {
        problems.push(`${keyPath(["hosts"])}: meshAddress is not allowed without cutover:mesh`);
    }
    const dbPhase = raw.database?.phase;
    if (dbPhase === "replica" || dbPhase === "dual-primary") {
        if (!raw.peer) problems.push(`${keyPath(["database", "phase"])}: ${show(dbPhase)} is not allowed without cutover:peer: the site replicates from the peer site`);
        if (!raw.mesh) problems.push(`${keyPath(["database", "phase"])}: ${show(dbPhase)} is not allowed without cutover:mesh: replication runs over the mesh`);
    }
    // Detached ends the migration: nothing of this stack may read the peer any more, so
    // `pulumi destroy` of the peer's stack touches nothing this site needs.
    for (const [key, phase] of [["database", dbPhase], ["cache", raw.cache?.phase]] as const) {
        if (phase === "detached" && raw.peer) {
            problems.push(`${keyPath([key, "phase"])}: "detached" is not allowed with cutover:peer ${show(raw.peer)}: detached removes every tie to the peer site; remove cutover:peer in the same change`);
        }
    }
    if (dbPhase === "dual-primary" && raw.database?.engine === "postgres") {
        problems.push(`${keyPath(["database", "phase"])}: "dual-primary" is not allowed with engine postgres: streaming replication has one writer; use replica, then primary`);
    }
    if (raw.cache) {
        if (raw.cache.phase === "replica") {
            if (!raw.peer) problems.push(`${keyPath(["cache", "phase"])}: "replica" is not allowed without cutover:peer: the cache replicates from the peer site`);
            if (!raw.mesh) problems.push(`${keyPath(["cache", "phase"])}: "replica" is not allowed without cutover:mesh: replication runs over the mesh`);
        }
        if (cacheHostOf(raw) === undefined) problems.push(`${keyPath(["cache"])}: ${show(raw.cache)} is not allowed: the site has no cache or db host to run Redis on`);
    }
    if (raw.dns?.names && !raw.live) problems.push(`${keyPath(["live"])}: is required with cutover:dns.names: the site the names point at (this stack's site ${show(raw.site)} or the peer's)`);
    if (raw.live && !raw.dns?.names) problems.push(`${keyPath(["live"])}: ${show(raw.live)} is not allowed without cutover:dns.names: set it in the stack that owns the public records`);
    if (raw.live && raw.live !== raw.site && !raw.peer) {
        problems.push(`${keyPath(["live"])}: ${show(raw.live)} is not allowed: it is not this site (${show(raw.site)}) and there is no cutover:peer to serve it`);
    }
    // The runbook holds and routes writes through every edge's HAProxy admin socket: edges the
    // program does not run would veto the cutover on the night ("cannot reach the edge").
    const edgesManaged = raw.edge?.manage ?? raw.provider !== "existing";
    if (raw.live && raw.peer && raw.mesh && hasRole(raw, "db") && hasRole(raw, "edge") && !edgesManaged) {
        problems.push(`${keyPath(["edge", "manage"])}: ${show(raw.edge?.manage)} is not allowed with cutover:live and a db host: the cutover runbook holds and routes writes on every edge's HAProxy, which runs only where the program manages the edge; set cutover:edge.manage to true${raw.provider === "existing" ? " (existing edges default to false)" : ""}`);
    }
    const rb = raw.runbook;
    if (rb && (rb.catchupMs ?? 1500) >= (rb.freezeMs ?? defaultFreezeMs(raw))) {
        problems.push(`${keyPath(["runbook", "catchupMs"])}: ${show(rb.catchupMs ?? 1500)} is not allowed: catch-up happens inside the freeze, so it must be shorter than cutover:runbook.freezeMs (${rb.freezeMs ?? defaultFreezeMs(raw)})`);
    }
    // A MySQL/MariaDB freeze ends in whole seconds (its event); the Redis beside it is paused
    // until the earliest second the event may fire, which must leave time for the switch.
    const mysqlCacheOnDb = raw.cache && !hasRole(raw, "cache") && raw.database && raw.database.engine !== "postgres" && raw.database.phase !== "dual-primary";
    if (raw.live && mysqlCacheOnDb && rb?.freezeMs !== undefined && rb.freezeMs < 2500) {
        problems.push(`${keyPath(["runbook", "freezeMs"])}: ${show(rb.freezeMs)} is not allowed with Redis on the ${raw.database!.engine} host: the runbook pauses Redis writes until the freeze's last whole second, so the freeze must last at least 2500 ms`);
    }
    if (rb && !raw.live) problems.push(`${keyPath(["runbook"])}: is not allowed without cutover:live: the runbook runs in the stack that owns the flip`);
    if (raw.database?.engine === "postgres" && (rb?.parity?.length ?? 0) > 0) {
        problems.push(`${keyPath(["runbook", "parity"])}: ${show(rb!.parity)} is not allowed with engine postgres: its switch waits for the exact WAL position instead (CHECKSUM TABLE is MySQL's)`);
    }
    if (raw.probe && (!raw.mesh || !hasRole(raw, "db"))) {
        problems.push(`${keyPath(["probe"])}: true is not allowed here: the probe app writes rows to the site's database over the mesh (needs cutover:mesh and a db host)`);
    }
    if (raw.dns) {
        const seen = new Set<string>();
        for (const [i, n] of (raw.dns.names ?? []).entries()) {
            if (seen.has(n)) problems.push(`${keyPath(["dns", "names", i])}: ${show(n)} is not allowed: listed twice`);
            seen.add(n);
        }
        for (const n of Object.keys(raw.dns.adopt ?? {})) {
            if (!seen.has(n)) problems.push(`${keyPath(["dns", "adopt", n])}: is not allowed: ${show(n)} is not in cutover:dns.names`);
        }
    }
    if (raw.media) problems.push(...mediaProblems(raw, secretKeys));
    else if (raw.mediaCredentials) problems.push(`${keyPath(["mediaCredentials"])}: is not allowed without cutover:media`);
    const managed = raw.database?.managed;
    if (managed) {
        const at = keyPath(["database", "managed"]);
        if (raw.provider !== "aws") problems.push(`${at}: is not allowed with provider ${raw.provider}: RDS needs provider aws`);
        if (raw.database?.engine !== "mysql") problems.push(`${at}: is not allowed with engine ${showValue(raw.database?.engine)}: the RDS path is MySQL (mysql.rds_set_external_master)`);
        if (dbPhase === "dual-primary") problems.push(`${at}: is not allowed with phase "dual-primary": RDS replicates one way`);
        if (hasRole(raw, "db")) problems.push(`${at}: is not allowed with a db pool: RDS is the site's database`);
        if (!hasRole(raw, "worker")) problems.push(`${at}: needs a worker pool: its first host relays replication between RDS and the old site over the mesh`);
        if (!raw.mesh) problems.push(`${at}: needs cutover:mesh: the relay reaches the old site over it`);
        if (raw.backups) problems.push(`${keyPath(["backups"])}: is not allowed with an RDS database: RDS keeps its own automated backups`);
    }
    if (raw.backups && !hasRole(raw, "db") && !managed) problems.push(`${keyPath(["backups"])}: is not allowed: the site has no db host to back up`);
    // Uptime checks from Cloudflare: for existing hosts, and for any edge that admits HTTP from Cloudflare only.
    const proxied = edgeProxiedOf(raw);
    const why = raw.provider === "existing" ? "with provider existing" : "with a proxied edge (cutover:edge.proxied), which admits HTTP only from Cloudflare";
    if (raw.monitoring && (raw.provider === "existing" || proxied)) {
        if (!raw.dns) problems.push(`${keyPath(["monitoring"])}: needs cutover:dns ${why}: the edge's uptime checks are Cloudflare health checks in that zone`);
        if (!raw.monitoring.cloudflareAccountId) problems.push(`${keyPath(["monitoring", "cloudflareAccountId"])}: is required ${why} (the account that sends the health-check notifications)`);
    } else if (raw.monitoring?.cloudflareAccountId) {
        problems.push(`${keyPath(["monitoring", "cloudflareAccountId"])}: is not allowed with provider ${raw.provider} and an edge that is not proxied: its own uptime checks are used`);
    }
    if (raw.sshPrivateKey && !secretKeys.has(`${NAMESPACE}:sshPrivateKey`)) {
        problems.push(`${keyPath(["sshPrivateKey"])}: (value hidden) must be a secret: set it with pulumi config set --secret`);
    }
    if (raw.peer && raw.peer.split("/")[2] === stack) {
        problems.push(`${keyPath(["peer"])}: ${show(raw.peer)} is not allowed: a stack cannot be its own peer`);
    }
    return problems;
}

/** The media sync's host, target and keys: each remote needs the keys of its kind, as a secret. */
function mediaProblems(raw: Raw, secretKeys: Set<string>): string[] {
    const m = raw.media!;
    const problems: string[] = [];
    const hosts = ROLES.flatMap((r) => namesOf(raw, r));
    if (!hosts.includes(m.host)) problems.push(`${keyPath(["media", "host"])}: ${showValue(m.host)} is not a host of this stack; allowed: ${hosts.join(", ")}`);
    if (!m.target && raw.provider !== "aws") problems.push(`${keyPath(["media", "target"])}: is required with provider ${raw.provider} (only an aws stack has a media bucket of its own)`);
    const creds = raw.mediaCredentials ?? {};
    if (raw.mediaCredentials && !secretKeys.has(`${NAMESPACE}:mediaCredentials`)) {
        problems.push(`${keyPath(["mediaCredentials"])}: (value hidden) must be a secret: set it with pulumi config set --secret --path`);
    }
    for (const side of ["source", "target"] as const) {
        const remote = m[side];
        const given = creds[side];
        if (!remote) {
            if (given) problems.push(`${keyPath(["mediaCredentials", side])}: is not allowed: the target is the stack's own bucket, whose key the stack creates`);
            continue;
        }
        const needs = remote.type === "s3" ? "accessKeyId and secretAccessKey" : "privateKey";
        const has = remote.type === "s3" ? given !== undefined && "accessKeyId" in given : given !== undefined && "privateKey" in given;
        if (!has) problems.push(`${keyPath(["mediaCredentials", side])}: (value hidden) is required for the ${remote.type} ${side}: ${needs}, with pulumi config set --secret --path`);
    }
    return problems;
}

function mediaRemote(r: z.infer<typeof remoteSchema>, user: string): MediaRemote {
    return r.type === "s3"
        ? { type: "s3", provider: r.provider ?? (r.endpoint ? "Other" : "AWS"), endpoint: r.endpoint, region: r.region, bucket: r.bucket, path: r.path ?? "" }
        : { type: "sftp", host: r.host, user: r.user ?? user, port: r.port ?? 22, path: r.path };
}

function mediaCredentials(c: z.infer<typeof credentialsSchema> | undefined): MediaCredentials | undefined {
    if (!c) return undefined;
    return "privateKey" in c ? { privateKey: pulumi.secret(c.privateKey) } : { accessKeyId: pulumi.secret(c.accessKeyId), secretAccessKey: pulumi.secret(c.secretAccessKey) };
}

/**
 * Validates the whole config of one stack. `values` is the engine's config map
 * ("cutover:site" -> text); keys of other namespaces (aws:, digitalocean:) are left
 * to their providers. Throws ConfigError listing every problem at once.
 */
export function parseSiteConfig(values: Record<string, string>, secretKeys: string[], stack: string): SiteConfig {
    const mine: Record<string, unknown> = {};
    for (const [key, text] of Object.entries(values)) {
        if (key.startsWith(`${NAMESPACE}:`)) mine[key.slice(NAMESPACE.length + 1)] = decode(text);
    }
    const secrets = new Set(secretKeys);
    const parsed = schema.safeParse(mine, { reportInput: true });
    if (!parsed.success) {
        // Keys that hold secrets are never echoed, even when set in plain text by mistake.
        const secretTop = new Set([...secretKeys.filter((k) => k.startsWith(`${NAMESPACE}:`)).map((k) => k.slice(NAMESPACE.length + 1)), "sshPrivateKey", "mediaCredentials"]);
        throw new ConfigError([...parsed.error.issues.map((i) => describeIssue(i, secretTop)), ...crossCheckTheRest(mine, parsed.error.issues, secrets, stack)]);
    }
    const raw = parsed.data;
    const problems = crossCheck(raw, secrets, stack);
    if (problems.length > 0) throw new ConfigError(problems);

    const user = raw.sshUser ?? DEFAULT_USER[raw.provider];
    return {
        stack,
        site: raw.site,
        provider: raw.provider,
        region: raw.region ?? "",
        adminCidrs: raw.adminCidrs,
        networkCidr: raw.network.cidr,
        pools: raw.pools ?? {},
        existingHosts: (raw.hosts ?? []).map((h) => ({ ...h, user: h.user ?? user, port: h.port ?? 22 })),
        bastion: raw.bastion ? { host: raw.bastion.host, user: raw.bastion.user ?? user, port: raw.bastion.port ?? 22 } : undefined,
        sshUser: user,
        sshPublicKeys: raw.sshPublicKeys ?? [],
        sshPrivateKey: raw.sshPrivateKey ? pulumi.secret(raw.sshPrivateKey) : undefined,
        image: raw.image ?? DEFAULT_IMAGE[raw.provider],
        peer: raw.peer,
        // An existing edge may be serving visitors directly: closing it to all but Cloudflare needs the operator's word.
        edgeProxied: edgeProxiedOf(raw),
        adoptClose: raw.adopt?.close ?? [],
        edgeManaged: raw.edge?.manage ?? raw.provider !== "existing",
        dbEngine: raw.database?.engine ?? "mariadb",
        dbPhase: raw.database?.phase ?? "primary",
        cache: raw.cache ? { engine: "redis", phase: raw.cache.phase ?? "primary", host: cacheHostOf(raw)! } : undefined,
        probe: raw.probe ?? false,
        live: raw.live,
        runbook: {
            strategy: raw.database?.phase === "dual-primary" ? "dual-primary" : "freeze",
            freezeMs: raw.runbook?.freezeMs ?? defaultFreezeMs(raw),
            holdMarginMs: holdMarginMs(raw),
            catchupMs: raw.runbook?.catchupMs ?? 1500,
            maxLagSeconds: raw.runbook?.maxLagSeconds ?? 10,
            postponeFile: raw.runbook?.postponeFile ?? "/etc/cutover/postpone",
            postponeMinutes: raw.runbook?.postponeMinutes ?? 60,
            precheck: raw.runbook?.precheck,
            validate: raw.runbook?.validate,
            parity: raw.runbook?.parity ?? [],
            attempt: raw.runbook?.attempt ?? 1,
        },
        media: raw.media
            ? {
                  host: raw.media.host,
                  plan: {
                      source: mediaRemote(raw.media.source, user),
                      target: raw.media.target ? mediaRemote(raw.media.target, user) : undefined,
                      transfers: raw.media.transfers ?? 16,
                      checkers: raw.media.checkers ?? 32,
                      retries: raw.media.retries ?? 5,
                      lowLevelRetries: raw.media.lowLevelRetries ?? 10,
                      rewrite: raw.media.rewrite,
                      run: raw.media.run ?? 1,
                  },
                  credentials: { source: mediaCredentials(raw.mediaCredentials?.source), target: mediaCredentials(raw.mediaCredentials?.target) },
              }
            : undefined,
        managedDb: raw.database?.managed
            ? { instanceClass: raw.database.managed.instanceClass, storageGb: raw.database.managed.storageGb, engineVersion: raw.database.managed.engineVersion ?? "8.0", multiAz: raw.database.managed.multiAz ?? true }
            : undefined,
        backups: raw.backups ? { region: raw.backups.region, schedule: raw.backups.schedule ?? "30 2 * * *", keepDays: raw.backups.keepDays ?? 35 } : undefined,
        monitoring: raw.monitoring
            ? {
                  emails: raw.monitoring.emails,
                  cpuPercent: raw.monitoring.cpuPercent ?? 90,
                  memoryPercent: raw.monitoring.memoryPercent ?? 90,
                  diskPercent: raw.monitoring.diskPercent ?? 85,
                  path: raw.monitoring.path ?? "/",
                  cloudflareAccountId: raw.monitoring.cloudflareAccountId,
              }
            : undefined,
        dns: raw.dns
            ? { zoneId: raw.dns.zoneId, zone: raw.dns.zone, names: raw.dns.names ?? [], origin: raw.dns.origin ?? "origin", ttl: raw.dns.ttl ?? 60, adopt: raw.dns.adopt ?? {} }
            : undefined,
        mesh: raw.mesh
            ? {
                  cidr: raw.mesh.cidr,
                  siteRange: raw.mesh.siteRange,
                  port: raw.mesh.port ?? 655,
                  hubsPerSite: raw.mesh.hubsPerSite ?? 2,
                  addresses: meshAddresses(raw, raw.mesh.siteRange).addresses,
              }
            : undefined,
    };
}

// The SDK knows which keys were set with --secret but keeps the check internal (not in its typings).
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };

/** Reads the running stack's config from the Pulumi runtime. */
export function loadSiteConfig(): SiteConfig {
    const values = pulumi.runtime.allConfig();
    const secretKeys = Object.keys(values).filter((k) => isConfigSecret(k));
    return parseSiteConfig(values, secretKeys, pulumi.getStack());
}

/**
 * Fails with a config error unless the backend has the peer's stack. A StackReference to a
 * missing stack fails inside the engine with only "unknown stack", after the rest of the
 * program has already changed hosts; read first, before any resource, the same failure
 * says what to do. A peer that was never deployed is fine (its outputs are empty).
 */
export async function requirePeerStack(peer: string): Promise<void> {
    try {
        await pulumi.runtime.invoke("pulumi:pulumi:readStackOutputs", { name: peer });
    } catch (e) {
        if (!/unknown stack/i.test(String((e as Error)?.message ?? e))) throw e;
        throw new ConfigError([`cutover:peer: ${JSON.stringify(peer)} is not a stack in this backend: create both stacks (pulumi stack init) before the first pulumi up of either; a peer that was never deployed is fine`]);
    }
}
