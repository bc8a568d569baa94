// Builds and tears down the lab: Linux namespaces as hosts, joined by a router.
// Everything is found again by name prefix, so `down` cleans up after a crash too.
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { cutRules, hostInitScript, networkCommands } from "./render";
import { sshArgv } from "./ssh";
import { detachVolumes } from "./cloud";
import { hostInitPid } from "./proc";
import { LAB_PREFIX, LabHost, LabPlan, labPlan } from "./topology";

export const LAB_DIR = path.join(os.tmpdir(), LAB_PREFIX);

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    ms: number;
    /** The signal that ended the process, when one did (code is then -1). */
    signal?: string;
}

export class LabError extends Error {}

function run(argv: string[], input?: string): RunResult {
    const started = Date.now();
    const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", input, timeout: 60_000 });
    return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : ""), ms: Date.now() - started };
}

function must(argv: string[]): string {
    const r = run(argv);
    if (r.code !== 0) throw new LabError(`lab: ${argv.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
}

/** What the lab needs from the machine; a clear message instead of a failure halfway. */
export function checkMachine(): string[] {
    const missing: string[] = [];
    if (process.platform !== "linux") return [`the lab needs Linux (network, mount, UTS and PID namespaces); this is ${process.platform}`];
    if (typeof process.getuid === "function" && process.getuid() !== 0) missing.push("the lab needs root (it creates namespaces, links and mounts): run it with sudo or as root");
    for (const [tool, pkg] of [["ip", "iproute2"], ["unshare", "util-linux"], ["nsenter", "util-linux"], ["sshd", "openssh-server"], ["ssh", "openssh-client"], ["iptables", "iptables"], ["sudo", "sudo"]]) {
        if (run(["sh", "-c", `command -v ${tool} || test -x /usr/sbin/${tool}`]).code !== 0) missing.push(`${tool} is missing (Debian package ${pkg})`);
    }
    return missing;
}

/** Namespaces left by any lab (this one or a crashed one). */
export function labNamespaces(): string[] {
    const r = run(["ip", "netns", "list"]);
    return r.stdout
        .split("\n")
        .map((l) => l.split(" ")[0])
        .filter((n) => n.startsWith(`${LAB_PREFIX}-`));
}

export class Lab {
    readonly keyPath = path.join(LAB_DIR, "operator-key");

    constructor(readonly plan: LabPlan = labPlan(), private readonly log: (line: string) => void = () => {}) {}

    /** Builds the network and boots every host; waits until each host's sshd answers. */
    async up(): Promise<void> {
        const problems = checkMachine();
        if (problems.length > 0) throw new LabError(problems.join("\n"));
        if (labNamespaces().length > 0) {
            this.log("lab: removing a lab left from an earlier run");
            await Lab.down();
        }
        fs.mkdirSync(LAB_DIR, { recursive: true, mode: 0o700 });
        must(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cutover-lab-operator", "-f", this.keyPath]);
        const started = Date.now();
        for (const argv of networkCommands(this.plan)) must(argv);
        fs.writeFileSync(path.join(LAB_DIR, "host-init.sh"), hostInitScript(), { mode: 0o755 });
        const pubkey = fs.readFileSync(`${this.keyPath}.pub`, "utf8").trim();
        // Hosts of the lab's clouds wait for the program to create them (lab/cloud.ts).
        const booted = this.plan.hosts.filter((h) => !h.cloud);
        for (const h of booted) this.boot(h, pubkey);
        await Promise.all(booted.map((h) => this.waitForSsh(h)));
        const waiting = this.plan.hosts.length - booted.length;
        this.log(`lab: ${booted.length} hosts up in ${((Date.now() - started) / 1000).toFixed(1)} s${waiting ? `; ${waiting} left for the program to create` : ""}`);
    }

    private boot(h: LabHost, pubkey: string): void {
        const out = fs.openSync(path.join(LAB_DIR, `${h.name}.log`), "a");
        const child = spawn("ip", ["netns", "exec", h.netns, "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "--propagation", "private", "bash", path.join(LAB_DIR, "host-init.sh"), h.name, pubkey], {
            detached: true,
            stdio: ["ignore", out, out],
        });
        child.unref();
        fs.closeSync(out);
    }

    private async waitForSsh(h: LabHost): Promise<void> {
        const deadline = Date.now() + 30_000;
        let last: RunResult | undefined;
        while (Date.now() < deadline) {
            last = await this.ssh(h.name, "true", { timeoutMs: 5_000 });
            if (last.code === 0) return;
            await new Promise((r) => setTimeout(r, 200));
        }
        const bootLog = fs.existsSync(path.join(LAB_DIR, `${h.name}.log`)) ? fs.readFileSync(path.join(LAB_DIR, `${h.name}.log`), "utf8") : "";
        throw new LabError(`lab host ${h.name} (${h.address}) did not answer SSH within 30 s: ${last?.stderr.trim()}\n${bootLog}`);
    }

    host(name: string): LabHost {
        const h = this.plan.hosts.find((x) => x.name === name);
        if (!h) throw new LabError(`no lab host ${name}; hosts: ${this.plan.hosts.map((x) => x.name).join(", ")}`);
        return h;
    }

    /** Runs a command on a lab host over SSH (bounded in time). */
    ssh(hostName: string, command: string, opts: { stdin?: string; timeoutMs?: number } = {}): Promise<RunResult> {
        const h = hostName === this.plan.admin.name ? this.plan.admin : this.host(hostName);
        return runArgv([...sshArgv(this.plan.admin.netns, { host: h.address, keyPath: this.keyPath }), command], { stdin: opts.stdin, timeoutMs: opts.timeoutMs ?? 120_000 });
    }

    /** Runs a command in the operator's namespace (inside adminCidrs). */
    operator(command: string, timeoutMs = 60_000): Promise<RunResult> {
        return runArgv(["ip", "netns", "exec", this.plan.admin.netns, "bash", "-c", command], { timeoutMs });
    }

    /** Runs a command on the client (the internet, outside adminCidrs). */
    client(command: string, timeoutMs = 60_000): Promise<RunResult> {
        return runArgv(["ip", "netns", "exec", this.plan.client.netns, "bash", "-c", command], { timeoutMs, env: HOST_ENV });
    }

    /** Runs a command inside a host's namespaces without SSH (for the lab's own checks). */
    enter(hostName: string, command: string, timeoutMs = 60_000): Promise<RunResult> {
        const h = this.host(hostName);
        const init = hostInitPid(h.netns);
        if (!init) return Promise.resolve({ code: -1, stdout: "", stderr: `lab host ${h.name} is not running`, ms: 0 });
        return runArgv(["nsenter", "-t", init, "-m", "-u", "-p", "-n", "bash", "-c", command], { timeoutMs, env: HOST_ENV });
    }

    /** Cuts the link between two segments (e.g. "old" and "new"); each keeps its other links. */
    cut(a: string, b: string): void {
        for (const rule of cutRules(this.plan, a, b)) must(["ip", "netns", "exec", this.plan.routerNs, "iptables", "-I", "FORWARD", ...rule]);
    }

    restore(a: string, b: string): void {
        for (const rule of cutRules(this.plan, a, b)) {
            while (run(["ip", "netns", "exec", this.plan.routerNs, "iptables", "-D", "FORWARD", ...rule]).code === 0) {
                // remove every copy
            }
        }
    }

    /** Removes every lab namespace, its processes and links, and the lab directory. */
    static async down(): Promise<void> {
        const namespaces = labNamespaces();
        for (let attempt = 0; attempt < 50; attempt++) {
            const pids = namespaces.flatMap((ns) => run(["ip", "netns", "pids", ns]).stdout.split("\n").filter(Boolean));
            if (pids.length === 0) break;
            run(["kill", "-9", ...pids]);
            await new Promise((r) => setTimeout(r, 100));
        }
        for (const ns of namespaces) run(["ip", "netns", "del", ns]);
        detachVolumes(LAB_DIR);
        fs.rmSync(LAB_DIR, { recursive: true, force: true });
    }
}

/** Commands inside lab hosts see the system's PATH, as over SSH (not this machine's language shims). */
const HOST_ENV: NodeJS.ProcessEnv = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C", HOME: "/root" };

export function runArgv(argv: string[], opts: { stdin?: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
    const started = Date.now();
    return new Promise((resolve) => {
        const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => {
            stderr += `\n(killed after ${opts.timeoutMs / 1000} s)`;
            child.kill("SIGKILL");
        }, opts.timeoutMs);
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            resolve({ code: code ?? -1, stdout, stderr, ms: Date.now() - started, ...(signal ? { signal } : {}) });
        });
        child.stdin.on("error", () => {});
        child.stdin.end(opts.stdin ?? "");
    });
}
