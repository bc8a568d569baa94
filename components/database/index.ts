import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import { ConfigError, MeshPlan } from "../config";
import { DB_PORTS } from "../firewall/render";
import { CachePhase, DbEngine, DbPhase, Host } from "../types";
import { ReplicationCa, secretStdin, trustBundle } from "./ca";
import { REPL_USER, autoIncrementFor, mysqlScript, serverIdFor, waitingScript } from "./mysql";
import { PG_REPL_ROLE, pgScript } from "./postgres";
import { REDIS_TLS_PORT, redisScript } from "./redis";

export { ReplicationCa } from "./ca";

/** What a step last reported ("waiting" while the peer is not ready). */
export interface ReplicationState {
    role: string;
    /** GTID set (MySQL/MariaDB), LSN (PostgreSQL) or replication offset (Redis). */
    position: string;
    /** A replica's lag: seconds behind (MySQL/MariaDB), bytes received but not yet replayed (PostgreSQL), seconds since the last word from the primary (Redis). */
    lag: string;
}

/** A site's `db` output: what the other site needs to replicate from (or to) it. */
export interface DbOutput {
    engine: DbEngine;
    phase: DbPhase;
    host: string;
    meshAddress: string;
    port: number;
    /** PEM of the site's replication CA. */
    caCert: string;
    /** MySQL/MariaDB replication credentials (secret); PostgreSQL authenticates by certificate. */
    replication?: { user: string; password: string };
    state: ReplicationState;
    /** The RDS endpoint, when the site's database is managed (host is then its relay). */
    managed?: string;
}

/** A site's `cache` output (Redis through stunnel). */
export interface CacheOutput {
    engine: "redis";
    phase: CachePhase;
    host: string;
    meshAddress: string;
    /** stunnel's TLS port. */
    port: number;
    caCert: string;
    /** The Redis password (secret): a replica's masterauth. */
    password: string;
    state: ReplicationState;
}

/** What a replicating step needs from the peer stack. */
export interface PeerLink<T> {
    /** The peer's output (undefined until the peer is deployed). */
    output: pulumi.Input<T | undefined>;
    /** Whether the peer stack has outputs at all (it was deployed). */
    deployed: pulumi.Input<boolean>;
    /** Whether the peer's site has taken in all of this site's mesh members (so it is reachable). */
    knowsUs: pulumi.Input<boolean>;
}

type Readiness<T> = { ready: true; peer: T } | { ready: false; why: string };

/**
 * Whether a step that copies the peer can run. A peer not deployed yet, or not knowing
 * our mesh members yet, makes the step wait (it becomes the real one on the next `pulumi
 * up`); a deployed peer with nothing to copy from is a config mistake.
 */
export function readiness<T extends { phase: string }>(key: string, link: PeerLink<T>, accepts: (p: T) => boolean, wanted: string): pulumi.Output<Readiness<T>> {
    return pulumi.all([link.output, link.deployed, link.knowsUs]).apply(([p, deployed, known]): Readiness<T> => {
        if (deployed && (!p || !accepts(p as T))) {
            throw new ConfigError([`cutover:${key}: this phase is not allowed while the peer stack's ${key} is ${p ? JSON.stringify((p as T).phase) : "absent"}: it needs ${wanted}`]);
        }
        if (!p || !deployed) return { ready: false, why: "the peer stack is not deployed yet; run pulumi up here again after it" };
        if (!known) return { ready: false, why: "the peer site does not know this site's mesh members yet; run pulumi up on the peer stack, then here again" };
        return { ready: true, peer: p as T };
    });
}

/** "key: value" pairs a step prints on its `role=` line. */
export function reportedState(stdout: pulumi.Output<string>, prefix: string): pulumi.Output<ReplicationState> {
    return stdout.apply((out) => {
        const line = (out ?? "").split("\n").reverse().find((l) => l.startsWith(`${prefix}: role=`)) ?? "";
        const field = (k: string) => new RegExp(`${k}=(\\S*)`).exec(line)?.[1] ?? "";
        return { role: field("role") || "waiting", position: field("position"), lag: field("lag") };
    });
}

export interface DatabaseArgs {
    engine: DbEngine;
    phase: DbPhase;
    host: Host;
    mesh: MeshPlan;
    ca: ReplicationCa;
    peer: PeerLink<DbOutput>;
    /** The site runs the rehearsal probe app: its account (MySQL/MariaDB: with this password, secret; PostgreSQL: certificate login). */
    probe?: boolean;
    probePassword?: pulumi.Output<string>;
    /** Steps that must be done first (the mesh the replication runs over). */
    after: pulumi.Resource[];
    /** MySQL/MariaDB on an adopted host: the addresses its inventory saw the server listen on, kept (its apps connect there). */
    legacyAddresses?: pulumi.Input<string[]>;
}

/**
 * The site's database across the mesh: a server certificate from the site's CA for the
 * db host's mesh address, and the ensure-step of its phase. MySQL/MariaDB replicate with
 * GTIDs over TLS (REQUIRE SSL); PostgreSQL streams over TLS with a client certificate.
 */
export class Database extends pulumi.ComponentResource {
    /** The `db` output, field by field, so only the password is secret. */
    public readonly output: Omit<DbOutput, "caCert" | "state" | "replication"> & {
        caCert: pulumi.Output<string>;
        state: pulumi.Output<ReplicationState>;
        replication?: { user: string; password: pulumi.Output<string> };
    };
    /** The ensure-step (the runbook runs after it). */
    public readonly step: command.remote.Command;

    constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:Database", name, {}, opts);
        const meshAddress = args.mesh.addresses[args.host.name];
        const port = DB_PORTS[args.engine];
        const server = args.ca.issue(`${name}-server`, { commonName: args.host.name, ipAddresses: [meshAddress, "127.0.0.1"], usage: "server" });
        const copies = args.phase === "replica" || args.phase === "dual-primary";
        const ready = copies
            ? readiness("database", args.peer, (p) => (args.phase === "replica" ? p.phase === "primary" || p.phase === "dual-primary" : p.phase !== "detached") && p.engine === args.engine,
                  args.phase === "replica" ? `a primary (or dual-primary) ${args.engine} database` : `a ${args.engine} database that is not detached`)
            : undefined;
        const peerCa = args.phase === "detached" ? undefined : pulumi.output(args.peer.output).apply((p) => p?.caCert);
        const bundle = trustBundle(args.ca.certPem, peerCa);

        let script: pulumi.Output<string>;
        let stdin: pulumi.Output<string>;
        let replication: { user: string; password: pulumi.Output<string> } | undefined;
        if (args.engine === "postgres") {
            const client = args.ca.issue(`${name}-client`, { commonName: PG_REPL_ROLE, usage: "client" });
            const phase = args.phase as Exclude<DbPhase, "dual-primary">; // ruled out by the config check
            const s = { host: args.host.name, meshAddress, port };
            script = pulumi.all([bundle, server.certPem, client.certPem, ready]).apply(([caBundle, serverCert, clientCert, r]) =>
                r && !r.ready
                    ? waitingScript("database", args.host.name, r.why)
                    : pgScript(s, { phase, meshCidr: args.mesh.cidr, caBundle, serverCert, clientCert, probe: args.probe, source: r?.ready ? { host: r.peer.host, meshAddress: r.peer.meshAddress, port: r.peer.port } : undefined }),
            );
            stdin = secretStdin({ "server-key": server.keyPem, "client-key": client.keyPem });
        } else {
            // Each site mints its own replication password; the peer reads it from the `db` output.
            const password = new random.RandomPassword(`${name}-replication`, { length: 32, special: false }, { parent: this }).result;
            const base = { host: args.host.name, flavor: args.engine, serverId: serverIdFor(meshAddress), meshAddress, port };
            // The peer's server, once deployed, whatever the phase: the key spacing holds before dual-primary begins.
            const peerServer = args.phase === "detached" ? undefined : pulumi.output(args.peer.output).apply((p) => (p?.engine === args.engine ? p.meshAddress : undefined));
            script = pulumi.all([bundle, server.certPem, ready, args.legacyAddresses ?? [], peerServer]).apply(([caBundle, serverCert, r, legacy, peerMesh]) => {
                const s = { ...base, keepAddresses: legacy };
                return r && !r.ready
                    ? waitingScript("database", args.host.name, r.why)
                    : mysqlScript(s, {
                          phase: args.phase,
                          meshCidr: args.mesh.cidr,
                          caBundle,
                          serverCert,
                          source: r?.ready ? { host: r.peer.host, meshAddress: r.peer.meshAddress, port: r.peer.port } : undefined,
                          autoIncrement: peerMesh ? autoIncrementFor(s.serverId, serverIdFor(peerMesh)) : undefined,
                          probe: args.probePassword !== undefined,
                      });
            });
            const peerPassword = ready ? ready.apply((r) => (r.ready ? r.peer.replication?.password ?? "" : "")) : undefined;
            stdin = secretStdin({ "server-key": server.keyPem, "replication-password": password, ...(peerPassword ? { "peer-password": peerPassword } : {}), ...(args.probePassword ? { "probe-password": args.probePassword } : {}) });
            if (args.phase !== "detached") replication = { user: REPL_USER, password: pulumi.secret(password) };
        }
        const step = new command.remote.Command(`${name}-${args.host.name}`, { connection: args.host.connection, create: script, stdin }, { parent: this, dependsOn: args.after });
        this.step = step;

        this.output = { engine: args.engine, phase: args.phase, host: args.host.name, meshAddress, port, caCert: args.ca.certPem, state: reportedState(step.stdout, "database"), replication };
        this.registerOutputs({ output: this.output });
    }
}

export interface CacheArgs {
    phase: CachePhase;
    host: Host;
    mesh: MeshPlan;
    ca: ReplicationCa;
    peer: PeerLink<CacheOutput>;
    /** The peer's CA from its `db` output (one CA per stack): trusted before the peer has a cache output, so a Redis added to both sites later replicates on the first run. */
    peerDbCa?: pulumi.Input<string | undefined>;
    after: pulumi.Resource[];
}

/** Redis of the site, replicated through stunnel with client certificates from the program's CAs. */
export class Cache extends pulumi.ComponentResource {
    public readonly output: Omit<CacheOutput, "caCert" | "state" | "password"> & {
        caCert: pulumi.Output<string>;
        state: pulumi.Output<ReplicationState>;
        password: pulumi.Output<string>;
    };

    constructor(name: string, args: CacheArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:Cache", name, {}, opts);
        const meshAddress = args.mesh.addresses[args.host.name];
        const server = args.ca.issue(`${name}-server`, { commonName: args.host.name, ipAddresses: [meshAddress], usage: "server" });
        const client = args.ca.issue(`${name}-client`, { commonName: `${args.host.name} redis replication`, usage: "client" });
        const password = new random.RandomPassword(`${name}-password`, { length: 32, special: false }, { parent: this }).result;
        const ready = args.phase === "replica" ? readiness("cache", args.peer, (p) => p.phase === "primary", "a primary Redis") : undefined;
        const peerCa = args.phase === "detached" ? undefined : pulumi.all([args.peer.output, args.peerDbCa]).apply(([p, dbCa]) => p?.caCert ?? dbCa);
        const bundle = trustBundle(args.ca.certPem, peerCa);
        const s = pulumi.output(args.host.privateAddress).apply((privateAddress) => ({ host: args.host.name, meshAddress, privateAddress }));
        const script = pulumi.all([s, bundle, server.certPem, client.certPem, ready]).apply(([srv, caBundle, serverCert, clientCert, r]) =>
            r && !r.ready
                ? waitingScript("cache", args.host.name, r.why)
                : redisScript(srv, { phase: args.phase, caBundle, serverCert, clientCert, source: r?.ready ? { host: r.peer.host, meshAddress: r.peer.meshAddress } : undefined }),
        );
        const peerPassword = ready ? ready.apply((r) => (r.ready ? r.peer.password : "")) : undefined;
        const stdin = secretStdin({ "server-key": server.keyPem, "client-key": client.keyPem, password, ...(peerPassword ? { "peer-password": peerPassword } : {}) });
        const step = new command.remote.Command(`${name}-${args.host.name}`, { connection: args.host.connection, create: script, stdin }, { parent: this, dependsOn: args.after });

        this.output = { engine: "redis", phase: args.phase, host: args.host.name, meshAddress, port: REDIS_TLS_PORT, caCert: args.ca.certPem, password: pulumi.secret(password), state: reportedState(step.stdout, "cache") };
        this.registerOutputs({ output: this.output });
    }
}
