// Runs the program through the real Pulumi engine (npm run engine:install): the CLI and its
// Node.js language host built from Go modules, a file backend and the passphrase secrets
// provider in the lab's folder, the lab stacks' config set with `pulumi config`, and the CLI
// started in the operator's namespace (inside adminCidrs), as an engineer's laptop would be.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { readStackFile } from "../tools/offline/stackfile";
import { Write, underLoad } from "./flip";
import { LAB_DIR, Lab, RunResult, runArgv } from "./lab";

const ROOT = path.resolve(__dirname, "..");
// Files and folders the program needs; the project folder is the lab's, so the stack
// files `pulumi config set` writes never land in the clone.
const PROJECT_FILES = ["Pulumi.yaml", "package.json", "tsconfig.json", "index.ts", "components", "node_modules", "policies"];
/** The org a file backend gives every stack (cutover:peer names it). */
export const FILE_BACKEND_ORG = "organization";

/** The installed engine's `pulumi`, or undefined when `npm run engine:install` has not run on this machine. */
export function installedEngine(): string | undefined {
    const r = spawnSync("bash", [path.join(ROOT, "engine", "install.sh"), "--cached"], { encoding: "utf8" });
    return r.status === 0 ? r.stdout.trim().split("\n").pop() : undefined;
}

export interface EngineStep {
    urn: string;
    /** create, update, replace, delete, same, read... as the engine reports it. */
    op: string;
    /** From the step's start to its outputs (the engine's timestamps are whole seconds). */
    ms: number;
}

export interface EngineRun extends RunResult {
    /** Each resource the engine stepped, from the events `pulumi up --json` streams. */
    steps: EngineStep[];
    /** What the engine, the program and the providers reported (debug messages left out). */
    diagnostics: string[];
}

export class Engine {
    readonly dir = path.join(LAB_DIR, "engine");
    readonly project = path.join(this.dir, "project");
    readonly cloudflare = path.join(this.dir, "cloudflare.json");
    private readonly env: NodeJS.ProcessEnv;

    constructor(private readonly lab: Lab, private readonly pulumi: string) {
        const home = path.join(this.dir, "home");
        fs.mkdirSync(this.project, { recursive: true });
        fs.mkdirSync(path.join(this.dir, "state"), { recursive: true });
        fs.mkdirSync(home, { recursive: true });
        for (const f of PROJECT_FILES) {
            const link = path.join(this.project, f);
            if (!fs.existsSync(link)) fs.symlinkSync(path.join(ROOT, f), link);
        }
        // The plugins were installed into the engine's own home; the rest of this home is ours.
        const plugins = path.join(path.dirname(path.dirname(pulumi)), "home", "plugins");
        if (!fs.existsSync(path.join(home, "plugins"))) fs.symlinkSync(plugins, path.join(home, "plugins"));
        this.env = {
            PATH: [path.dirname(pulumi), path.join(ROOT, "node_modules", ".bin"), process.env.PATH].join(":"),
            HOME: process.env.HOME,
            PULUMI_HOME: home,
            PULUMI_BACKEND_URL: `file://${path.join(this.dir, "state")}`,
            // The lab's own throwaway passphrase; a real site keeps its passphrase out of the shell history.
            PULUMI_CONFIG_PASSPHRASE: "cutover-lab",
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
            PULUMI_SKIP_CONFIRMATIONS: "true",
            CUTOVER_FAKE_CLOUDFLARE: this.cloudflare,
            NO_COLOR: "1",
        };
    }

    /** Runs the CLI in the operator's namespace, in the lab's project folder. */
    run(args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<RunResult> {
        const argv = ["ip", "netns", "exec", this.lab.plan.admin.netns, "env", "-C", this.project, this.pulumi, ...args, "--non-interactive", "--color", "never"];
        return runArgv(argv, { stdin: opts.stdin, timeoutMs: opts.timeoutMs ?? 30 * 60_000, env: this.env });
    }

    private async must(args: string[], opts: { stdin?: string } = {}): Promise<RunResult> {
        const r = await this.run(args, opts);
        if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} failed (exit ${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
        return r;
    }

    async init(stack: string): Promise<void> {
        await this.must(["stack", "init", `${FILE_BACKEND_ORG}/cutover/${stack}`]);
    }

    /**
     * Sets the stack's config from the project's Pulumi.<stack>.yaml with `pulumi config`:
     * plain values in one set-all, the operator's private key as a secret (--secret).
     * `changes` replace values (JSON text for structured ones); null removes a key.
     */
    async configure(stack: string, changes: Record<string, string | null> = {}): Promise<void> {
        const file = readStackFile(ROOT, stack);
        const values: Record<string, string> = { ...file.config };
        for (const [k, v] of Object.entries(changes)) {
            if (v === null) delete values[k];
            else values[k] = v;
        }
        const plain: Record<string, { value: string; objectValue?: unknown; secret: false }> = {};
        for (const [key, value] of Object.entries(values)) {
            if (key === "cutover:sshPrivateKey") continue;
            const structured = /^[[{]/.test(value.trim());
            plain[key] = structured ? { value, objectValue: JSON.parse(value), secret: false } : { value, secret: false };
        }
        const current = JSON.parse((await this.must(["config", "--json", "-s", stack])).stdout || "{}") as Record<string, unknown>;
        for (const key of Object.keys(current)) if (!(key in plain) && key !== "cutover:sshPrivateKey") await this.must(["config", "rm", key, "-s", stack]);
        await this.must(["config", "set-all", "--json", JSON.stringify(plain), "-s", stack]);
        await this.must(["config", "set", "--secret", "cutover:sshPrivateKey", "-s", stack], { stdin: fs.readFileSync(this.lab.keyPath, "utf8") });
    }

    async setConfig(stack: string, key: string, value: string): Promise<void> {
        await this.must(["config", "set", key, value, "-s", stack]);
    }

    /** `pulumi config set --path` (numbers and booleans are stored as such). */
    async setConfigPath(stack: string, keyPath: string, value: string): Promise<void> {
        await this.must(["config", "set", "--path", keyPath, value, "-s", stack]);
    }

    async removeConfig(stack: string, key: string): Promise<void> {
        await this.must(["config", "rm", key, "-s", stack]);
    }

    async removeConfigPath(stack: string, keyPath: string): Promise<void> {
        await this.must(["config", "rm", "--path", keyPath, "-s", stack]);
    }

    /** `pulumi up --yes --json`; the result carries the engine's per-resource steps. */
    async up(stack: string, extra: string[] = []): Promise<EngineRun> {
        const r = await this.run(["up", "--yes", "--skip-preview", "--json", "-s", stack, ...extra]);
        return { ...r, ...engineEvents(r.stdout) };
    }

    /** `pulumi destroy --yes`, with the engine's steps. */
    async destroy(stack: string): Promise<EngineRun> {
        const r = await this.run(["destroy", "--yes", "--skip-preview", "--json", "-s", stack]);
        return { ...r, ...engineEvents(r.stdout) };
    }

    async preview(stack: string, extra: string[] = []): Promise<RunResult> {
        return this.run(["preview", "-s", stack, ...extra]);
    }

    /** The stack's outputs, secrets shown (the lab's only). */
    async outputs(stack: string): Promise<Record<string, unknown>> {
        return JSON.parse((await this.must(["stack", "output", "--json", "--show-secrets", "-s", stack])).stdout);
    }

    /** The stack's checkpoint as the file backend keeps it (what `pulumi stack export` prints). */
    async exported(stack: string): Promise<string> {
        return (await this.must(["stack", "export", "-s", stack])).stdout;
    }
}

interface EngineEvent {
    timestamp: number;
    resourcePreEvent?: { metadata: { urn: string } };
    resOutputsEvent?: { metadata: { urn: string; op: string } };
    diagnosticEvent?: { message: string; severity: string; urn?: string };
}

/** Reads the event stream of `pulumi up --json`: one step per resource, and the diagnostics. */
export function engineEvents(stdout: string): { steps: EngineStep[]; diagnostics: string[] } {
    const started = new Map<string, number>();
    const steps: EngineStep[] = [];
    const diagnostics: string[] = [];
    for (const line of stdout.split("\n")) {
        if (!line.startsWith("{")) continue;
        let e: EngineEvent;
        try {
            e = JSON.parse(line);
        } catch {
            continue;
        }
        if (e.resourcePreEvent) started.set(e.resourcePreEvent.metadata.urn, e.timestamp);
        if (e.resOutputsEvent) {
            const m = e.resOutputsEvent.metadata;
            steps.push({ urn: m.urn, op: m.op, ms: (e.timestamp - (started.get(m.urn) ?? e.timestamp)) * 1000 });
        }
        if (e.diagnosticEvent && e.diagnosticEvent.severity !== "debug") diagnostics.push(`${e.diagnosticEvent.severity}: ${e.diagnosticEvent.message.trim()}`);
    }
    return { steps, diagnostics };
}

/** `pulumi stack init` and `pulumi config` of both lab stacks, then `pulumi up` of old, new, old, new. */
export async function engineSetUp(engine: Engine, stacks: { old: string; new: string }, log: (line: string) => void = () => {}): Promise<Array<{ stack: string; ms: number; changed: number }>> {
    for (const stack of [stacks.old, stacks.new]) {
        await engine.init(stack);
        await engine.configure(stack);
    }
    const ups = [];
    for (const stack of [stacks.old, stacks.new, stacks.old, stacks.new]) {
        log(`== pulumi up -s ${stack} (the real engine)`);
        const r = await engine.up(stack);
        if (r.code !== 0) throw new Error(`pulumi up -s ${stack} failed (exit ${r.code}):\n${r.diagnostics.join("\n").slice(-6000)}\n${r.stderr.slice(-2000)}`);
        ups.push({ stack, ms: r.ms, changed: r.steps.filter((s) => s.op !== "same" && s.op !== "read").length });
    }
    return ups;
}

/** `pulumi config set cutover:live <to>` and `pulumi up` of the stack that owns it, under the load generator. */
/** `from`..`to` is the `pulumi up` (ms since the epoch): the load runs from 2 s before it until 3 s after. */
export async function engineFlip(lab: Lab, engine: Engine, o: { stack: string; to: string; url: string; client: string; rate: number }): Promise<{ run: EngineRun; writes: Write[]; from: number; to: number }> {
    let run: EngineRun | undefined;
    let from = 0;
    let to = 0;
    const writes = await underLoad(lab, { url: o.url, client: o.client, rate: o.rate, seconds: 120, tailMs: 3000 }, async () => {
        await new Promise((r) => setTimeout(r, 2000));
        await engine.setConfig(o.stack, "cutover:live", o.to);
        from = Date.now();
        run = await engine.up(o.stack);
        to = Date.now();
    });
    return { run: run!, writes, from, to };
}
