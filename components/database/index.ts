import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { ConfigError, MeshPlan } from "../config";
import { DB_PORTS } from "../firewall/render";
import { DbEngine, Host } from "../types";
import { MysqlServer, REPL_USER, mysqlPrimaryScript, mysqlReplicaScript, replicaWaitingScript, serverIdFor } from "./render";

export type DbPhase = "primary" | "replica";

/** A site's `db` output: what the other site needs to replicate from (or to) it. */
export interface DbOutput {
    engine: DbEngine;
    phase: DbPhase;
    host: string;
    meshAddress: string;
    port: number;
    /** PEM of the site's CA, which signed its database server certificate. */
    caCert: string;
    /** Replication credentials (a secret), published by the primary. */
    replication?: { user: string; password: string };
    /** Last reported position: GTID binlog position (primary) or slave position (replica). */
    position: string;
}

export interface DatabaseArgs {
    site: string;
    engine: Extract<DbEngine, "mysql" | "mariadb">;
    phase: DbPhase;
    host: Host;
    mesh: MeshPlan;
    /** The peer site's `db` output (undefined until the peer is deployed). */
    peerDb: pulumi.Input<DbOutput | undefined>;
    /** Whether the peer stack has outputs at all (it was deployed). */
    peerDeployed: pulumi.Input<boolean>;
    /** Whether the peer's site has taken in all of this site's mesh members (so it is reachable). */
    peerKnowsUs: pulumi.Input<boolean>;
    /** Steps that must be done first (the mesh the replication runs over). */
    after: pulumi.Resource[];
}

/**
 * MySQL/MariaDB of one site across the mesh: a CA owned by the program, a server
 * certificate for the database host's mesh address, and the ensure-step for its phase
 * (primary: binary log, TLS-only replication user; replica: streamed seed from the peer's
 * primary, then GTID replication over TLS verifying the primary's certificate).
 */
export class Database extends pulumi.ComponentResource {
    /** The `db` output, field by field, so only the password is secret. */
    public readonly output: Omit<DbOutput, "caCert" | "position" | "replication"> & {
        caCert: pulumi.Output<string>;
        position: pulumi.Output<string>;
        replication?: { user: string; password: pulumi.Output<string> };
    };

    constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:Database", name, {}, opts);
        const meshAddress = args.mesh.addresses[args.host.name];
        const port = DB_PORTS[args.engine];
        const caKey = new tls.PrivateKey(`${name}-ca`, { algorithm: "RSA", rsaBits: 2048 }, { parent: this });
        const ca = new tls.SelfSignedCert(`${name}-ca`, {
            privateKeyPem: caKey.privateKeyPem,
            isCaCertificate: true,
            validityPeriodHours: 10 * 365 * 24,
            allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
            subject: { commonName: `cutover ${args.site} database CA`, organization: "cutover" },
        }, { parent: this });
        const serverKey = new tls.PrivateKey(`${name}-server`, { algorithm: "RSA", rsaBits: 2048 }, { parent: this });
        const request = new tls.CertRequest(`${name}-server`, {
            privateKeyPem: serverKey.privateKeyPem,
            subject: { commonName: args.host.name, organization: "cutover" },
            ipAddresses: [meshAddress, "127.0.0.1"],
        }, { parent: this });
        const cert = new tls.LocallySignedCert(`${name}-server`, {
            certRequestPem: request.certRequestPem,
            caPrivateKeyPem: caKey.privateKeyPem,
            caCertPem: ca.certPem,
            validityPeriodHours: 2 * 365 * 24,
            allowedUses: ["digital_signature", "key_encipherment", "server_auth", "client_auth"],
        }, { parent: this });

        const server: MysqlServer = { host: args.host.name, engine: args.engine, serverId: serverIdFor(meshAddress), meshAddress, port };
        // A replica of a peer not deployed yet waits (its step becomes the real one on the next
        // `pulumi up`); a deployed peer without a primary database is a mistake.
        const peer = pulumi.all([args.peerDb, args.peerDeployed]).apply(([p, deployed]) => {
            if (args.phase === "replica" && deployed && (!p || p.phase !== "primary" || !p.replication)) {
                throw new ConfigError([`cutover:database.phase: "replica" is not allowed: the peer stack publishes no primary database in its db output (set its cutover:database.phase to primary and deploy it)`]);
            }
            return p;
        });
        // The primary mints the replication password; the replica reads it from the primary's output.
        const password =
            args.phase === "primary"
                ? new random.RandomPassword(`${name}-replication`, { length: 32, special: false }, { parent: this }).result
                : peer.apply((p) => p?.replication?.password ?? "");
        const caBundle = pulumi.all([ca.certPem, peer]).apply(([own, p]) => [own.trim(), p?.caCert?.trim()].filter(Boolean).join("\n"));
        const script = pulumi.all([caBundle, cert.certPem, peer, args.peerKnowsUs]).apply(([bundle, certPem, p, known]) =>
            args.phase === "primary"
                ? mysqlPrimaryScript(server, args.mesh.cidr, bundle, certPem)
                : !p
                  ? replicaWaitingScript(server.host, "the peer stack is not deployed yet; run pulumi up here again after it")
                  : !known
                    ? replicaWaitingScript(server.host, `the primary's site does not know this site's mesh members yet; run pulumi up on the peer stack, then here again`)
                    : mysqlReplicaScript(server, { host: p.host, meshAddress: p.meshAddress, port: p.port }, bundle, certPem),
        );
        const step = new command.remote.Command(`${name}-${args.host.name}`, {
            connection: args.host.connection,
            create: script,
            // Secrets travel on stdin only: the password line, then the server key.
            stdin: pulumi.secret(pulumi.interpolate`${password}\n${serverKey.privateKeyPem}`),
        }, { parent: this, dependsOn: args.after });

        this.output = {
            engine: args.engine,
            phase: args.phase,
            host: args.host.name,
            meshAddress,
            port,
            caCert: ca.certPem,
            position: step.stdout.apply((out) => /gtid_(?:binlog|slave)_pos=(\S*)/.exec(out ?? "")?.[1] ?? ""),
            replication: args.phase === "primary" ? { user: REPL_USER, password: pulumi.secret(password) } : undefined,
        };
        this.registerOutputs({ output: this.output });
    }
}
