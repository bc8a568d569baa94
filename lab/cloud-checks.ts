// What the lab as a cloud shows about the hosts the program created, read from the hosts
// themselves after provisioning: how each booted (cloud-init, its name, the first-boot
// firewall, whether the program's first step waited for the boot), as which user each
// cloud's hosts were reached, and where the DigitalOcean db droplet keeps its data. The
// rehearsal puts these facts in its report's "clouds" part; its test asserts them.
import * as fs from "fs";
import * as path from "path";
import { LAB_DIR, Lab, runArgv } from "./lab";
import { readRuns } from "./executor";
import { sshArgv } from "./ssh";
import type { CloudKind } from "./render";

export interface CloudBoot {
    cloud: CloudKind;
    /** `cloud-init status`: "done" once the first boot finished without error. */
    cloudInit: string;
    /** The host's name, as the user data set it. */
    hostname: string;
    ufwActive: boolean;
    /** cloud-init's runcmd runs the program's first-boot firewall exactly once. */
    firstBootFirewall: boolean;
    firstStep?: string;
    /** Seconds the program's first step started before the first boot finished (negative: after). */
    firstStepStartedBeforeBootFinishedS: number | null;
    /** The first step ended after the first boot finished: it waited for it. */
    firstStepWaited: boolean;
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;
const BOOT_FINISHED = "/var/lib/cloud/instance/boot-finished";
const RUNCMD = "/var/lib/cloud/instance/scripts/runcmd";

/** How each created host booted, and how the program's first step met it. */
export async function cloudBoots(lab: Lab): Promise<Record<string, CloudBoot>> {
    const runs = readRuns(LAB_DIR);
    const out: Record<string, CloudBoot> = {};
    for (const h of lab.plan.hosts.filter((x) => x.cloud)) {
        // One line each, empty when a command fails.
        const r = await lab.enter(h.name, `printf '%s\\n' "$(cloud-init status | sed 's/^status: //')" "$(hostname)" "$(stat -c %Y ${BOOT_FINISHED})" "$(ufw status | head -n 1)" "$(grep -c CUTOVER_FIRST_BOOT ${RUNCMD})"`);
        const [cloudInit = "", hostname = "", finishedS = "", ufw = "", runcmd = ""] = r.stdout.split("\n");
        const finished = Number(finishedS) * 1000;
        const first = runs.find((x) => x.host === h.name && x.action !== "unchanged");
        const started = first ? (first.endedAt ?? 0) - first.ms : 0;
        out[h.name] = {
            cloud: h.cloud!,
            cloudInit,
            hostname,
            ufwActive: ufw === "Status: active",
            firstBootFirewall: runcmd === "1",
            firstStep: first?.step,
            firstStepStartedBeforeBootFinishedS: first && finished > 0 ? seconds(finished - started) : null,
            firstStepWaited: !!first && finished > 0 && (first.endedAt ?? 0) >= finished,
        };
    }
    return out;
}

export interface CloudLogins {
    /** The login users of every step, per cloud (from the steps' connections in both stacks' state). */
    users: Record<CloudKind, string[]>;
    /** An AWS instance refuses root and tells to log in as admin, as Debian's AWS images do. */
    awsRootRefused: boolean;
    /** admin has passwordless sudo on the AWS db instance. */
    awsAdminSudo: boolean;
    /** The peer's runbook key on the AWS db instance: lines in admin's and root's keys, and the owner of admin's. */
    peerRunbookKey: { admin: number; root: number; owner: string };
}

interface StepTarget {
    target: { host: string; user: string; keyPath: string } | "local";
}

/** As which user the program reached each cloud's hosts, and what an AWS instance allows. */
export async function cloudLogins(lab: Lab, stacks: string[], awsDbHost: string): Promise<CloudLogins> {
    const steps = stacks.flatMap((s) => Object.values(JSON.parse(fs.readFileSync(path.join(LAB_DIR, `state-${s}.json`), "utf8")) as Record<string, StepTarget>));
    const kindOf = new Map(lab.plan.hosts.filter((h) => h.cloud).map((h) => [h.address, h.cloud!]));
    const users: Record<CloudKind, string[]> = { digitalocean: [], aws: [] };
    for (const s of steps) {
        if (s.target === "local") continue;
        const kind = kindOf.get(s.target.host);
        if (kind && !users[kind].includes(s.target.user)) users[kind].push(s.target.user);
    }
    const aws = lab.host(awsDbHost);
    const withKey = steps.find((s) => s.target !== "local" && s.target.host === aws.address)?.target;
    let awsRootRefused = false;
    if (withKey && withKey !== "local") {
        const asRoot = await runArgv([...sshArgv(lab.plan.admin.netns, { host: aws.address, user: "root", keyPath: withKey.keyPath }), "id -u"], { timeoutMs: 30_000 });
        awsRootRefused = asRoot.stdout.trim() !== "0" && /Please login as the user "admin"/.test(asRoot.stdout + asRoot.stderr);
    }
    const sudo = await lab.enter(awsDbHost, "sudo -l -U admin");
    // One line each, empty when a command fails (grep -c prints 0 for a file without the key, nothing for no file).
    const keys = await lab.enter(awsDbHost, `printf '%s\\n' "$(grep -c ' cutover-peer-runbook:old$' /home/admin/.ssh/authorized_keys)" "$(grep -c cutover-peer-runbook /root/.ssh/authorized_keys)" "$(stat -c %U /home/admin/.ssh/authorized_keys)"`);
    const [admin = "", root = "", owner = ""] = keys.stdout.split("\n");
    // A read that failed is no count: NaN, never 0.
    const count = (line: string) => (/^\d+$/.test(line) ? Number(line) : NaN);
    return { users, awsRootRefused, awsAdminSudo: /NOPASSWD: ALL/.test(sudo.stdout), peerRunbookKey: { admin: count(admin), root: count(root), owner } };
}

/** Where a db host keeps its data directory: the mount's source, and whether MariaDB's tables are there. */
export async function dataVolume(lab: Lab, host: string): Promise<{ source: string; tables: boolean }> {
    const r = await lab.enter(host, "echo \"$(findmnt -rno SOURCE /var/lib/mysql)\"; test -d /var/lib/mysql/mysql && echo tables || echo none");
    const [source = "", tables = ""] = r.stdout.split("\n");
    return { source, tables: tables === "tables" };
}
