// The site's database as RDS MySQL (Adido), a replica of the old site's server through the
// relay on a worker host (see rds.ts): encrypted, private, deletion-protected.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import { secretStdin } from "./ca";
import { DbOutput, PeerLink, ReplicationState, readiness, reportedState } from "./index";
import { RDS_ADMIN_USER, RdsReplicaPlan, rdsReplicaScript } from "./rds";
import { waitingScript } from "./mysql";
import { DbPhase, Host } from "../types";

export interface ManagedDbSettings {
    instanceClass: string;
    storageGb: number;
    engineVersion: string;
    multiAz: boolean;
}

export interface ManagedDatabaseArgs {
    site: string;
    phase: DbPhase;
    settings: ManagedDbSettings;
    vpcId: pulumi.Input<string>;
    subnetIds: pulumi.Input<string>[];
    siteCidr: string;
    /** The worker host that relays replication and runs the database steps. */
    relay: Host;
    relayMeshAddress: string;
    peer: PeerLink<DbOutput>;
    peerSite: pulumi.Input<string>;
    after: pulumi.Resource[];
}

export class ManagedDatabase extends pulumi.ComponentResource {
    public readonly step: command.remote.Command;
    /** The `db` output, field by field (no CA: RDS presents Amazon's certificate). */
    public readonly output: Omit<DbOutput, "caCert" | "state" | "managed"> & { caCert: pulumi.Output<string>; state: pulumi.Output<ReplicationState>; managed: pulumi.Output<string> };
    /** The old site's replication password (secret), for the switch. */
    public readonly peerPassword: pulumi.Output<string>;
    /** What the switch needs: the relay plan (once the peer is known) and the admin password. */
    public readonly plan: pulumi.Output<RdsReplicaPlan | undefined>;
    public readonly adminPassword: pulumi.Output<string>;

    constructor(name: string, args: ManagedDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:ManagedDatabase", name, {}, opts);
        const child = { parent: this };
        const s = args.settings;
        const subnets = new aws.rds.SubnetGroup(`${name}-subnets`, { subnetIds: args.subnetIds, tags: { site: args.site } }, child);
        const group = new aws.ec2.SecurityGroup(`${name}-sg`, {
            vpcId: args.vpcId,
            description: `cutover ${args.site}: RDS, MySQL from the site network only`,
            ingress: [{ protocol: "tcp", fromPort: 3306, toPort: 3306, cidrBlocks: [args.siteCidr], description: "mysql from the site network" }],
            egress: [{ protocol: "tcp", fromPort: 3306, toPort: 3306, cidrBlocks: [args.siteCidr], description: "replication through the relay" }],
            tags: { site: args.site, role: "db" },
        }, child);
        this.adminPassword = new random.RandomPassword(`${name}-admin-password`, { length: 32, special: false }, child).result;
        const instance = new aws.rds.Instance(name, {
            identifierPrefix: `cutover-${args.site}-`,
            engine: "mysql",
            engineVersion: s.engineVersion,
            instanceClass: s.instanceClass,
            allocatedStorage: s.storageGb,
            storageType: "gp3",
            storageEncrypted: true,
            publiclyAccessible: false,
            multiAz: s.multiAz,
            dbSubnetGroupName: subnets.name,
            vpcSecurityGroupIds: [group.id],
            username: RDS_ADMIN_USER,
            password: this.adminPassword,
            // Binary logs on RDS need automated backups; they also let the new primary be copied later.
            backupRetentionPeriod: 7,
            deletionProtection: true,
            skipFinalSnapshot: false,
            finalSnapshotIdentifier: `cutover-${args.site}-final`,
            tags: { site: args.site, role: "db" },
        }, { ...child, additionalSecretOutputs: ["password"], protect: true });

        const relay = args.relay;
        const ready = args.phase === "replica"
            ? readiness("database", args.peer, (p) => (p.phase === "primary" || p.phase === "dual-primary") && p.engine === "mysql", "a primary mysql database")
            : pulumi.output({ ready: false as const, why: "RDS is this site's own primary" });
        // The plan holds addresses and a CA certificate only: shown in previews (the password travels apart).
        this.plan = pulumi.unsecret(pulumi.all([ready, args.peerSite, relay.privateAddress, instance.address, instance.port]).apply(([r, site, privateAddress, endpoint, port]) =>
            r.ready
                ? {
                      relay: { host: relay.name, privateAddress, port: 3306 },
                      source: { site, host: r.peer.host, meshAddress: r.peer.meshAddress, port: r.peer.port, flavor: "mysql" as const },
                      rds: { endpoint, port },
                      caBundle: r.peer.caCert,
                  }
                : undefined));
        const peerPassword = ready.apply((r) => (r.ready ? r.peer.replication?.password ?? "" : "-"));
        this.peerPassword = pulumi.secret(peerPassword);
        this.step = new command.remote.Command(`${name}-${relay.name}`, {
            connection: relay.connection,
            create: pulumi.all([pulumi.unsecret(ready.apply((r) => (r.ready ? "" : r.why))), this.plan]).apply(([why, p]) => (p ? rdsReplicaScript(p) : waitingScript("database", relay.name, why))),
            stdin: secretStdin({ "admin-password": this.adminPassword, "peer-password": peerPassword }),
        }, { ...child, dependsOn: [...args.after, instance] });
        this.output = {
            engine: "mysql",
            phase: args.phase,
            host: relay.name,
            meshAddress: args.relayMeshAddress,
            port: 3306,
            caCert: pulumi.output(""),
            state: reportedState(this.step.stdout, "database"),
            managed: instance.address,
        };
        this.registerOutputs({});
    }
}
