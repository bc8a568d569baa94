import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { secretStdin } from "../database/ca";
import { MysqlFlavor, waitingScript } from "../database/mysql";
import { SshConnection } from "../types";
import { DbEnd, EdgeEnd, Flip, RunbookSettings, precheckScript, resumeScript, switchScript } from "./render";
import { PgFlip, pgFreezeScript, pgFrozen, pgPrecheckScript, pgResumeScript, pgSwitchScript } from "./postgres";

/** A database end of the flip: how the program logs in there, and the password its replication user accepts (secret). */
export interface RunbookDb extends DbEnd {
    connection: SshConnection;
    password: string;
    /** The password of the Redis on this db host (secret), when the runbook switches Redis too. */
    cachePassword?: string;
}

export interface RunbookArgs {
    /** The site `cutover:live` names: the incoming one. */
    live: string;
    flavor: MysqlFlavor | "postgres";
    settings: RunbookSettings;
    /** Both sites keep Redis on their db host: the runbook switches it in the same window. */
    cache: boolean;
    /** This site's and the peer's database. */
    own: pulumi.Input<RunbookDb>;
    peer: pulumi.Input<RunbookDb>;
    /** Every edge of both sites (the peer's from its mesh output). */
    edges: pulumi.Input<EdgeEnd[]>;
    /** Whether the peer site has run since this one joined (it knows our mesh members and authorized our key). */
    peerReady: pulumi.Input<boolean>;
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

/** The switch's t<n> marks: "t0 held at=<ms>" ... as {held: "<ms>", ...}. */
export function switchMarks(stdout: string): Record<string, string> {
    const marks: Record<string, string> = {};
    for (const m of stdout.matchAll(/^runbook: switch t\d (\S+) at=(\d+)/gm)) marks[m[1]] = m[2];
    const waited = /^runbook: switch t2 .* waited=(\d+)/m.exec(stdout);
    if (waited) marks.catchupWaitedMs = waited[1];
    return marks;
}

/**
 * The cutover runbook, in the stack that owns `cutover:live`: precheck, switch and resume
 * as ordered remote commands on the two database hosts (render.ts). The scripts name the
 * outgoing and incoming site, so they run again exactly when `live` (or the attempt)
 * changes; a second `pulumi up` with nothing changed runs no step.
 */
export class Runbook extends pulumi.ComponentResource {
    /** The switch step: DNS records and edge reloads wait for it. */
    public readonly switched: command.remote.Command;
    public readonly output: pulumi.Output<RunbookOutput>;

    constructor(name: string, args: RunbookArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:Runbook", name, {}, opts);
        const s = args.settings;
        // Until the peer site has run after this one, every step waits on this site's db host.
        const ready = pulumi.output(args.peerReady);
        const ends = pulumi.all([args.own, args.peer, ready]).apply(([own, peer, r]) =>
            !r ? { incoming: own, outgoing: own } : own.site === args.live ? { incoming: own, outgoing: peer } : { incoming: peer, outgoing: own });
        const incoming = ends.apply((e) => e.incoming);
        const outgoing = ends.apply((e) => e.outgoing);
        const waiting = (id: string) => pulumi.unsecret(incoming.apply((i) => waitingScript(`runbook ${id}`, i.host, "the peer site has not run since this one joined (it authorizes this stack's key then); run pulumi up on the peer stack, then here again")));
        // Names and addresses only: public, though they travel with the peer's secrets.
        const flip = pulumi.unsecret(pulumi.all([ends, args.edges]).apply(([e, edges]): PgFlip => ({
            from: { site: e.outgoing.site, host: e.outgoing.host, meshAddress: e.outgoing.meshAddress, port: e.outgoing.port },
            to: { site: e.incoming.site, host: e.incoming.host, meshAddress: e.incoming.meshAddress, port: e.incoming.port },
            edges,
            settings: s,
            cache: args.cache,
        })));
        // A step on one database host reaches the other's server as its replication user (and,
        // with Redis on the db hosts, its own site's Redis and the other site's).
        const toOther = (here: pulumi.Output<RunbookDb>, there: pulumi.Output<RunbookDb>) =>
            secretStdin({
                "peer-password": there.apply((d) => d.password),
                ...(args.cache ? { "cache-password": here.apply((d) => d.cachePassword ?? ""), "cache-peer-password": there.apply((d) => d.cachePassword ?? "") } : {}),
            });
        const step = (id: string, connection: pulumi.Input<SshConnection>, create: pulumi.Input<string>, after: pulumi.Input<pulumi.Resource[]>, stdin: pulumi.Output<string>) =>
            new command.remote.Command(`${name}-${id}`, { connection, create, stdin }, { parent: this, dependsOn: after });

        const when = (id: string, script: pulumi.Output<string>) => pulumi.all([ready, script, waiting(id)]).apply(([r, real, wait]) => (r ? real : wait));
        let resume: command.remote.Command;
        if (args.flavor === "postgres") {
            // PostgreSQL: the outgoing host stops its own server (freeze) between precheck and switch; certificates authenticate, no password.
            // With Redis on the db hosts a step gets its own site's Redis password and the other site's.
            const none = pulumi.secret("");
            const cacheKeys = (here: pulumi.Output<RunbookDb>, there: pulumi.Output<RunbookDb>) =>
                args.cache ? secretStdin({ "cache-password": here.apply((d) => d.cachePassword ?? ""), "cache-peer-password": there.apply((d) => d.cachePassword ?? "") }) : none;
            const precheck = step("precheck", incoming.apply((i) => i.connection), when("precheck", flip.apply(pgPrecheckScript)), args.after, cacheKeys(incoming, outgoing));
            const needed = precheck.stdout.apply((out) => /^runbook: precheck needed=1/m.test(out ?? ""));
            const freeze = step("freeze", outgoing.apply((o) => o.connection), when("freeze", pulumi.all([flip, needed]).apply(([f, n]) => pgFreezeScript(f, n))), [precheck], none);
            const frozen = freeze.stdout.apply((out) => pgFrozen(out ?? ""));
            this.switched = step("switch", incoming.apply((i) => i.connection), when("switch", pulumi.all([flip, needed, frozen]).apply(([f, n, fr]) => pgSwitchScript(f, n, fr))), [freeze], cacheKeys(incoming, outgoing));
            const marks = pulumi.all([freeze.stdout, this.switched.stdout]).apply(([a, b]) => switchMarks(`${a ?? ""}\n${b ?? ""}`));
            resume = step("resume", outgoing.apply((o) => o.connection), when("resume", pulumi.all([flip, needed, marks]).apply(([f, n, m]) => pgResumeScript(f, n, m))), [this.switched], cacheKeys(outgoing, incoming));
        } else {
            const mysql: pulumi.Output<Flip> = flip.apply((f) => ({ ...f, flavor: args.flavor as MysqlFlavor }));
            const precheck = step("precheck", incoming.apply((i) => i.connection), when("precheck", mysql.apply(precheckScript)), args.after, toOther(incoming, outgoing));
            const needed = precheck.stdout.apply((out) => /^runbook: precheck needed=1/m.test(out ?? ""));
            this.switched = step("switch", incoming.apply((i) => i.connection), when("switch", pulumi.all([mysql, needed]).apply(([f, n]) => switchScript(f, n))), [precheck], toOther(incoming, outgoing));
            const marks = this.switched.stdout.apply((out) => switchMarks(out ?? ""));
            resume = step("resume", outgoing.apply((o) => o.connection), when("resume", pulumi.all([mysql, needed, marks]).apply(([f, n, m]) => resumeScript(f, n, m))), [this.switched], toOther(outgoing, incoming));
        }
        this.output = pulumi.all([flip, resume.stdout]).apply(([f, out]) => ({
            from: f.from.site,
            to: f.to.site,
            strategy: f.settings.strategy,
            audit: (out ?? "").split("\n").reverse().find((l) => l.startsWith("runbook: audit "))?.slice("runbook: audit ".length) ?? "",
        }));
        this.registerOutputs({ output: this.output });
    }
}
