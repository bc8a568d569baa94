import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { secretStdin } from "../database/ca";
import { MysqlFlavor } from "../database/mysql";
import { Host, SshConnection } from "../types";
import { DbEnd, Flip, RunbookSettings, catchupScript, commitScript, freezeScript, holdScript, precheckScript, promoteScript, resumeScript, routeScript } from "./render";

/** A database end of the flip, with the password its replication user accepts (secret). */
export interface RunbookDb extends DbEnd {
    connection: pulumi.Input<SshConnection>;
    password: pulumi.Input<string>;
}

export interface RunbookEdge {
    name: string;
    connection: pulumi.Input<SshConnection>;
}

export interface RunbookArgs {
    /** The site `cutover:live` names: the incoming one. */
    live: string;
    flavor: MysqlFlavor;
    settings: RunbookSettings;
    /** This site's and the peer's database. */
    own: RunbookDb;
    peer: pulumi.Input<RunbookDb>;
    /** This site's edge hosts and the peer's (known from its outputs). */
    ownEdges: Host[];
    peerEdges: pulumi.Input<RunbookEdge[]>;
    /** Steps that must be done first (replication set up). */
    after: pulumi.Input<pulumi.Resource[]>;
}

/** The `runbook` output: the last run's audit record. */
export interface RunbookOutput {
    from: string;
    to: string;
    strategy: string;
    audit: string;
}

/** What a step printed on its `runbook: <step> key=value ...` line. */
function reported(stdout: pulumi.Output<string>, step: string, key: string): pulumi.Output<string> {
    return stdout.apply((out) => {
        const line = (out ?? "").split("\n").reverse().find((l) => l.startsWith(`runbook: ${step} `)) ?? "";
        return new RegExp(`${key}=(\\S*)`).exec(line)?.[1] ?? "";
    });
}

/**
 * The cutover runbook, in the stack that owns `cutover:live`: ordered remote commands on
 * the database hosts and the edges of both sites (render.ts). The scripts name the
 * outgoing and incoming site, so they run again exactly when `live` (or the attempt)
 * changes; a second `pulumi up` with nothing changed runs no step.
 */
export class Runbook extends pulumi.ComponentResource {
    /** The route steps: what DNS records and edge reloads wait for. */
    public readonly routed: pulumi.Output<command.remote.Command[]>;
    public readonly output: pulumi.Output<RunbookOutput>;

    constructor(name: string, args: RunbookArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:Runbook", name, {}, opts);
        const s = args.settings;
        const incomingIsOwn = args.live === args.own.site;
        const incoming = pulumi.output(incomingIsOwn ? args.own : args.peer);
        const outgoing = pulumi.output(incomingIsOwn ? args.peer : args.own);
        // Names and addresses only: public, though they travel with the peer's secrets.
        const flip = pulumi.unsecret(pulumi.all([outgoing, incoming]).apply(([o, i]): Flip => ({
            from: { site: o.site, host: o.host, meshAddress: o.meshAddress, port: o.port },
            to: { site: i.site, host: i.host, meshAddress: i.meshAddress, port: i.port },
            flavor: args.flavor,
            settings: s,
        })));
        // A step on one database host reaches the other's server as its replication user.
        const toOther = (db: pulumi.Output<pulumi.Unwrap<RunbookDb>>) => secretStdin({ "peer-password": db.apply((d) => d.password) });
        const step = (id: string, connection: pulumi.Input<SshConnection>, create: pulumi.Input<string>, after: pulumi.Input<pulumi.Resource[]>, stdin?: pulumi.Output<string>) =>
            new command.remote.Command(`${name}-${id}`, { connection, create, ...(stdin ? { stdin } : {}) }, { parent: this, dependsOn: after });

        const precheck = step("precheck", incoming.connection, flip.apply(precheckScript), args.after, toOther(outgoing));
        const needed = reported(precheck.stdout, "precheck", "needed").apply((n) => n === "1" && s.strategy === "freeze");

        // Every edge of both sites: own ones known from config, the peer's from its outputs.
        const edges = (id: string, render: (host: string, f: Flip, needed: boolean) => string, after: pulumi.Input<pulumi.Resource[]>) => {
            const own = args.ownEdges.map((e) => step(`${id}-${e.name}`, e.connection, pulumi.all([flip, needed]).apply(([f, n]) => render(e.name, f, n)), after));
            // The peer's edge count comes from its stack outputs (known at preview).
            const peer = pulumi.output(args.peerEdges).apply((list) => list.map((e) => step(`${id}-${e.name}`, e.connection, pulumi.all([flip, needed]).apply(([f, n]) => render(e.name, f, n)), after)));
            return peer.apply((p) => [...own, ...p]);
        };
        if (s.strategy === "dual-primary") {
            // Both databases take writes: no freeze, no promotion; route and record.
            this.routed = edges("route", (h, f) => routeScript(h, f), [precheck]);
            const resume = step("resume", outgoing.connection, flip.apply((f) => resumeScript(f, true, {})), this.routed, toOther(incoming));
            this.output = this.audit(flip, resume);
            this.registerOutputs({ output: this.output });
            return;
        }
        const held = edges("hold", holdScript, [precheck]);
        const freeze = step("freeze", outgoing.connection, pulumi.all([flip, needed]).apply(([f, n]) => freezeScript(f, n)), held);
        const catchup = step("catchup", incoming.connection, pulumi.all([flip, needed]).apply(([f, n]) => catchupScript(f, n)), [freeze], toOther(outgoing));
        const promote = step("promote", incoming.connection, pulumi.all([flip, needed]).apply(([f, n]) => promoteScript(f, n)), [catchup], toOther(outgoing));
        const commit = step("commit", outgoing.connection, pulumi.all([flip, needed]).apply(([f, n]) => commitScript(f, n)), [promote]);
        this.routed = edges("route", (h, f) => routeScript(h, f), [commit]);
        const marks = pulumi.all([reported(freeze.stdout, "freeze", "position"), reported(catchup.stdout, "catchup", "waited")]).apply(([position, waited]) => ({ frozenAt: position, catchupWaitedMs: waited }));
        const resume = step("resume", outgoing.connection, pulumi.all([flip, needed, marks]).apply(([f, n, m]) => resumeScript(f, n, m)), this.routed, toOther(incoming));
        this.output = this.audit(flip, resume);
        this.registerOutputs({ output: this.output });
    }

    private audit(flip: pulumi.Output<Flip>, resume: command.remote.Command): pulumi.Output<RunbookOutput> {
        return pulumi.all([flip, resume.stdout]).apply(([f, out]) => ({
            from: f.from.site,
            to: f.to.site,
            strategy: f.settings.strategy,
            audit: (out ?? "").split("\n").reverse().find((l) => l.startsWith("runbook: audit "))?.slice("runbook: audit ".length) ?? "",
        }));
    }
}
