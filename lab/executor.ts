// Executes the program's command:remote:Command (and command:local:Command) resources
// for real, on lab hosts over SSH, with the command provider's lifecycle:
//   new                          -> run `create`
//   `triggers` changed           -> replace: run `create`, then the old `delete` (the
//                                   engine's default order: create before delete)
//   create/update/stdin/env/connection changed -> run `update`, or `create` again
//   unchanged                    -> run nothing, keep the recorded stdout/stderr
//   gone from the program        -> run its `delete`
// A failing step throws with the host, the step, the exit code and stderr.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { RunResult, runArgv } from "./lab";
import { SshTarget, sshArgv } from "./ssh";
import type { CloudSlot } from "./cloud";
// Secrets arrive wrapped; they are unwrapped only here, where they are used.
import { unwrapSecrets } from "../tools/offline/secrets";

export interface LabExecution {
    /** The stack being provisioned (state is kept per stack). */
    stack: string;
    operatorNetns: string;
    /** Where state, keys and the run log live. */
    dir: string;
    /** Lab host names by address, for readable progress. */
    hostNames: Record<string, string>;
    /** The lab as a cloud: the hosts a created droplet or instance becomes, by host name. */
    cloud?: Record<string, CloudSlot>;
}

export type StepAction = "create" | "update" | "replace" | "delete" | "unchanged";

export interface StepRun {
    stack: string;
    step: string;
    host: string;
    action: StepAction;
    ms: number;
    /** When it finished (ms since the epoch). */
    endedAt?: number;
    exitCode: number;
}

interface StepState {
    fingerprint: string;
    triggers: string;
    stdout: string;
    stderr: string;
    target: Omit<SshTarget, "sendEnv"> | "local";
    delete?: string;
    logging?: string;
}


function hash(v: unknown): string {
    return crypto.createHash("sha256").update(JSON.stringify(v ?? null)).digest("hex");
}

export class StepFailed extends Error {}

/** ssh's messages for a connection that was never made (before authentication, so before the command). */
const NOT_CONNECTED = /connect to host \S+ port \d+: (Connection refused|No route to host|Connection timed out|Network is unreachable)|kex_exchange_identification|Connection closed by \S+ port \d+|Connection reset by \S+ port \d+/;

export class CommandExecutor {
    private readonly statePath: string;
    private readonly runLog: string;
    private state: Record<string, StepState>;
    private readonly seen = new Set<string>();
    private readonly running = new Set<Promise<unknown>>();
    /** Why no further step starts: the first failure of this run. */
    private failed?: string;

    constructor(private readonly x: LabExecution) {
        fs.mkdirSync(path.join(x.dir, "keys"), { recursive: true, mode: 0o700 });
        this.statePath = path.join(x.dir, `state-${x.stack}.json`);
        this.runLog = path.join(x.dir, "runs.jsonl");
        this.state = fs.existsSync(this.statePath) ? JSON.parse(fs.readFileSync(this.statePath, "utf8")) : {};
    }

    private keyFile(privateKey: string): string {
        const file = path.join(this.x.dir, "keys", hash(privateKey).slice(0, 16));
        if (!fs.existsSync(file)) fs.writeFileSync(file, privateKey.endsWith("\n") ? privateKey : `${privateKey}\n`, { mode: 0o600 });
        return file;
    }

    private target(connection: any): Omit<SshTarget, "sendEnv"> {
        const c = unwrapSecrets(connection);
        return {
            host: c.host,
            port: c.port ?? 22,
            user: c.user ?? "root",
            keyPath: this.keyFile(c.privateKey),
            dialErrorLimit: c.dialErrorLimit ?? 10,
            ...(c.proxy ? { proxy: { host: c.proxy.host, port: c.proxy.port ?? 22, user: c.proxy.user ?? "root", keyPath: this.keyFile(c.proxy.privateKey) } } : {}),
        };
    }

    private hostLabel(target: StepState["target"]): string {
        return target === "local" ? "operator" : (this.x.hostNames[target.host] ?? target.host);
    }

    /**
     * As the command provider does, a connection that cannot be made yet (a host still
     * booting: refused, no route, no banner) is dialled again, once a second, up to the
     * connection's dialErrorLimit; the command had not started. Anything later is the step's.
     */
    private async exec(target: StepState["target"], command: string, stdin: string | undefined, env: Record<string, string>): Promise<RunResult> {
        const argv = target === "local"
            ? ["ip", "netns", "exec", this.x.operatorNetns, "bash", "-c", command]
            : [...sshArgv(this.x.operatorNetns, { ...target, sendEnv: Object.keys(env) }), command];
        const dials = target === "local" ? 1 : Math.max(1, target.dialErrorLimit ?? 10);
        let r: RunResult;
        for (let dial = 1; ; dial++) {
            r = await runArgv(argv, { stdin, timeoutMs: 30 * 60_000, env: { ...process.env, ...env } });
            if (r.code !== 255 || target === "local" || !NOT_CONNECTED.test(r.stderr) || dial >= dials) return r;
            await new Promise((res) => setTimeout(res, 1000));
        }
    }

    private record(run: StepRun): void {
        run.endedAt = Date.now();
        fs.appendFileSync(this.runLog, `${JSON.stringify(run)}\n`);
        const mark = run.action === "unchanged" ? "·" : run.exitCode === 0 ? "✓" : "✗";
        console.log(`  ${mark} ${run.stack.padEnd(8)} ${run.host.padEnd(12)} ${run.step.padEnd(34)} ${run.action.padEnd(9)} ${(run.ms / 1000).toFixed(1)} s`);
    }

    private save(): void {
        fs.writeFileSync(this.statePath, JSON.stringify(this.state, null, 1), { mode: 0o600 });
    }

    /**
     * Runs (or skips) one command resource; returns the outputs the provider would. After a
     * step failed, as the engine does, no further step starts (settle waits for those running).
     */
    async run(type: string, name: string, raw: Record<string, unknown>): Promise<{ stdout: string; stderr: string }> {
        if (this.failed) throw new StepFailed(`step ${name} not started: ${this.failed}`);
        const step = this.step(type, name, raw);
        this.running.add(step);
        try {
            return await step;
        } catch (e) {
            this.failed ??= `an earlier step failed (${(e as Error).message.split("\n")[0]})`;
            throw e;
        } finally {
            this.running.delete(step);
        }
    }

    /**
     * After a failed run: waits for the steps still running on their hosts and records them,
     * so the next run knows what they did (a step that finished on its host is in the state,
     * as the engine keeps it, even when another step failed).
     */
    async settle(): Promise<void> {
        while (this.running.size > 0) await Promise.allSettled([...this.running]);
    }

    private async step(type: string, name: string, raw: Record<string, unknown>): Promise<{ stdout: string; stderr: string }> {
        const key = `${type}::${name}`;
        this.seen.add(key);
        const inputs = unwrapSecrets(raw);
        const target: StepState["target"] = type === "command:local:Command" ? "local" : this.target(raw.connection);
        const { privateKey: _k, proxy: _p, ...visibleConnection } = inputs.connection ?? {};
        const fingerprint = hash({ create: inputs.create, update: inputs.update, delete: inputs.delete, environment: inputs.environment, stdin: inputs.stdin, connection: visibleConnection, key: target === "local" ? "" : target.keyPath });
        const triggers = hash(inputs.triggers ?? []);
        const prev = this.state[key];
        const host = this.hostLabel(target);

        let action: StepAction;
        if (!prev) action = "create";
        else if (prev.triggers !== triggers) action = "replace";
        else if (prev.fingerprint !== fingerprint) action = "update";
        else action = "unchanged";

        if (action === "unchanged") {
            this.record({ stack: this.x.stack, step: name, host, action, ms: 0, exitCode: 0 });
            return { stdout: prev!.stdout, stderr: prev!.stderr };
        }

        const started = Date.now();
        const command: string = action === "update" ? (inputs.update ?? inputs.create) : inputs.create;
        const env: Record<string, string> = { ...(inputs.environment ?? {}) };
        // A replacement is a new resource: only an update sees the previous outputs.
        if (prev && action === "update" && inputs.addPreviousOutputInEnv !== false) Object.assign(env, { PULUMI_COMMAND_STDOUT: prev.stdout, PULUMI_COMMAND_STDERR: prev.stderr });
        const result = command ? await this.mustRun(target, command, inputs.stdin, env, name, host, action, inputs.logging) : { code: 0, stdout: "", stderr: "", ms: 0 };
        if (action === "replace" && prev?.delete) await this.mustRun(prev.target, prev.delete, undefined, { PULUMI_COMMAND_STDOUT: prev.stdout, PULUMI_COMMAND_STDERR: prev.stderr }, name, host, "delete", prev.logging);
        this.state[key] = { fingerprint, triggers, stdout: result.stdout.trimEnd(), stderr: result.stderr.trimEnd(), target, delete: inputs.delete, logging: inputs.logging };
        this.save();
        this.record({ stack: this.x.stack, step: name, host, action, ms: Date.now() - started, exitCode: 0 });
        return { stdout: this.state[key].stdout, stderr: this.state[key].stderr };
    }

    private async mustRun(target: StepState["target"], command: string, stdin: string | undefined, env: Record<string, string>, step: string, host: string, action: StepAction, logging?: string): Promise<RunResult> {
        const r = await this.exec(target, command, stdin, env);
        if (r.code !== 0) {
            this.record({ stack: this.x.stack, step, host, action, ms: r.ms, exitCode: r.code });
            // Honour the resource's logging choice: stderr may carry what it wanted hidden.
            const shown = logging === "none" || logging === "stdout" ? `(stderr hidden: logging is ${logging})` : r.stderr.trim() || "(no stderr)";
            // A session that dies (the operator's network, a cancelled job) has no exit status: say so.
            const how = r.signal ? `the SSH session was ended by ${r.signal} before the step finished (no exit status)` : r.code === 255 && target !== "local" ? "exit code 255 (ssh: the connection failed or was lost)" : `exit code ${r.code}`;
            throw new StepFailed(`step ${step} on host ${host} failed during ${action}: ${how}\nstderr:\n${shown}`);
        }
        return r;
    }

    /** After the program ran: commands that are no longer declared are deleted. */
    async finish(): Promise<void> {
        for (const key of Object.keys(this.state)) {
            if (this.seen.has(key)) continue;
            const prev = this.state[key];
            const name = key.split("::").pop()!;
            const started = Date.now();
            if (prev.delete) await this.mustRun(prev.target, prev.delete, undefined, { PULUMI_COMMAND_STDOUT: prev.stdout, PULUMI_COMMAND_STDERR: prev.stderr }, name, this.hostLabel(prev.target), "delete", prev.logging);
            delete this.state[key];
            this.save();
            this.record({ stack: this.x.stack, step: name, host: this.hostLabel(prev.target), action: "delete", ms: Date.now() - started, exitCode: 0 });
        }
    }
}

export function readRuns(dir: string): StepRun[] {
    const file = path.join(dir, "runs.jsonl");
    if (!fs.existsSync(file)) return [];
    return fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}
