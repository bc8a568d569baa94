// Offline evaluation of a stack and, first, its peer: what `npm run plan`, `npm run policy`,
// the lab and the tests all use. Stacks are evaluated in worker processes, one at a time each.
import { ChildProcess, fork } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Evaluation } from "./evaluate";
import { LabExecution } from "../../lab/executor";
import { MockOptions } from "./mocks";
import { StackFile, StackFileError, readStackFile } from "./stackfile";

export { Evaluation, Registration } from "./evaluate";
export { StackFileError } from "./stackfile";

export const PROJECT_DIR = path.resolve(__dirname, "../..");

import { isSecretValue } from "./secrets";
export { isSecretValue, unwrapSecrets } from "./secrets";

export interface EvaluateOptions {
    stack: string;
    /** Where index.ts is (default: this project). */
    projectDir?: string;
    /** Where the Pulumi.<stack>.yaml files are (default: projectDir). */
    stackDir?: string;
    preview?: boolean;
    /** Real values for secure config keys (the lab's); others get a placeholder. */
    secrets?: Record<string, string>;
    /** Evaluate the peer stack first and serve its outputs (default true). */
    withPeer?: boolean;
    /** Overrides the stack file's config (tests); null removes a key. */
    config?: Record<string, string | null>;
    /** Timeout per stack. */
    timeoutMs?: number;
    /** The peer's outputs as last recorded (serialized), instead of evaluating the peer. */
    peerOutputs?: Record<string, unknown>;
    /** Execute command resources for real on lab hosts. */
    lab?: LabExecution;
    /** Keep keys, certificates and passwords here across evaluations (to compare two evaluations). */
    keepIn?: string;
    /** What the cloud's image lookup answers for the newest Debian 12 AMI. */
    newestDebianAmi?: string;
}

export interface PlanResult {
    main: Evaluation;
    /** The peer's evaluation, when the stack has a peer. */
    peer?: Evaluation;
    stackFile: StackFile;
}

/**
 * A worker process loads the SDK and the providers (seconds) before it can evaluate, and then
 * evaluates one request after another. Idle workers are kept for the next evaluation (a plan
 * with its peer, the lab's provisions, a test file's stacks) and end with this process.
 */
const idle: { child: ChildProcess; projectDir: string }[] = [];

function forkWorker(projectDir: string): ChildProcess {
    return fork(path.join(__dirname, "worker.ts"), [], {
        execArgv: ["--import", "tsx", "--expose-gc"],
        cwd: projectDir,
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        env: workerEnv(),
    });
}

/** This machine's cache for offline evaluations (nothing in it is needed: it only saves time). */
function cacheDir(name: string): string {
    const dir = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "cutover", name);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
}

/**
 * What a worker is given to start faster: the RSA keys the mocks generate (tinc's, the
 * database CAs'), reused by later evaluations as state would keep them (CUTOVER_MOCK_KEYS, or
 * the cache), and Node's compile cache for the SDK's and providers' code.
 */
function workerEnv(): NodeJS.ProcessEnv {
    return {
        ...process.env,
        CUTOVER_MOCK_KEYS: process.env.CUTOVER_MOCK_KEYS || cacheDir("mock-keys"),
        NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE || cacheDir("node-compile"),
    };
}

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null && child.connected;

/** An idle worker of this project that is still alive, else a new one. */
function takeWorker(projectDir: string): ChildProcess {
    while (true) {
        const i = idle.findIndex((w) => w.projectDir === projectDir);
        if (i < 0) return forkWorker(projectDir);
        const { child } = idle.splice(i, 1)[0];
        if (!alive(child)) continue;
        // The worker in use keeps this process alive until it answers; an idle one does not.
        child.ref();
        child.channel?.ref();
        return child;
    }
}

function putBack(child: ChildProcess, projectDir: string): void {
    child.unref();
    child.channel?.unref();
    idle.push({ child, projectDir });
}

/** Ends the idle workers, so the next evaluation starts in a new process (the benchmarks' peak memory). */
export function endIdleWorkers(): void {
    for (const { child } of idle.splice(0)) child.kill();
}

function runWorker(projectDir: string, stackFile: StackFile, options: MockOptions, timeoutMs: number): Promise<Evaluation> {
    return new Promise((resolve, reject) => {
        const child = takeWorker(projectDir);
        const done = () => {
            clearTimeout(timer);
            child.off("message", onMessage);
            child.off("exit", onExit);
        };
        const timer = setTimeout(() => {
            done();
            child.kill("SIGKILL");
            reject(new Error(`evaluating stack ${stackFile.stack} took longer than ${timeoutMs / 1000} s`));
        }, timeoutMs);
        const onMessage = (m: { evaluation?: Evaluation; failure?: string; retire?: boolean }) => {
            done();
            if (!m.retire) putBack(child, projectDir);
            if (m.evaluation) resolve(m.evaluation);
            else reject(new Error(`evaluating stack ${stackFile.stack} failed: ${m.failure}`));
        };
        const onExit = (code: number | null) => {
            done();
            reject(new Error(`evaluating stack ${stackFile.stack}: worker exited with code ${code} before answering`));
        };
        child.on("message", onMessage);
        child.on("exit", onExit);
        child.send({ projectDir, stackFile, options });
    });
}

/** Turns serialized outputs into what a StackReference serves: plain values plus the names of secret ones. */
function asPeerOutputs(outputs: Record<string, unknown>): { values: Record<string, unknown>; secretNames: string[] } {
    const values: Record<string, unknown> = {};
    const secretNames: string[] = [];
    const unwrap = (v: unknown): [unknown, boolean] => {
        if (isSecretValue(v)) return [unwrap(v.value)[0], true];
        if (Array.isArray(v)) {
            const parts = v.map(unwrap);
            return [parts.map((p) => p[0]), parts.some((p) => p[1])];
        }
        if (v && typeof v === "object") {
            let secret = false;
            const o: Record<string, unknown> = {};
            for (const [k, x] of Object.entries(v)) {
                const [val, s] = unwrap(x);
                o[k] = val;
                secret ||= s;
            }
            return [o, secret];
        }
        return [v, false];
    };
    for (const [k, v] of Object.entries(outputs)) {
        const [val, secret] = unwrap(v);
        values[k] = val;
        if (secret) secretNames.push(k);
    }
    return { values, secretNames };
}

/** The stack name a peer reference "org/project/stack" points at, as a local stack file. */
export function peerStackName(reference: string): string {
    return reference.split("/").pop() ?? reference;
}

export async function evaluateStack(o: EvaluateOptions): Promise<PlanResult> {
    const projectDir = o.projectDir ?? PROJECT_DIR;
    const timeoutMs = o.timeoutMs ?? 120_000;
    const stackDir = o.stackDir ?? projectDir;
    const stackFile = readStackFile(stackDir, o.stack, o.secrets);
    for (const [key, value] of Object.entries(o.config ?? {})) {
        if (value === null) delete stackFile.config[key];
        else stackFile.config[key] = value;
    }
    const preview = o.preview ?? false;

    let peer: Evaluation | undefined;
    const reference = stackFile.config["cutover:peer"];
    if (reference && (o.withPeer ?? true) && !o.peerOutputs) {
        const peerName = peerStackName(reference);
        let peerFile: StackFile;
        try {
            peerFile = readStackFile(stackDir, peerName, o.secrets);
        } catch (e) {
            if (e instanceof StackFileError) {
                throw new StackFileError(`cutover:peer: ${JSON.stringify(reference)} cannot be evaluated offline: ${e.message.replace(/^--stack: /, "")}`);
            }
            throw e;
        }
        // The documented first deploy, old -> new -> old -> new: this stack as if its peer were
        // not deployed yet (or, if it cannot stand alone, after the peer's first deploy), then
        // the peer seeing those outputs, then this stack seeing the peer's. Both first deploys
        // run at once (two workers): which one is needed shows only when they end.
        const [aloneFirst, peerFirst] = await Promise.all([
            runWorker(projectDir, stackFile, { preview: false, keepIn: o.keepIn }, timeoutMs),
            runWorker(projectDir, peerFile, { preview: false, keepIn: o.keepIn }, timeoutMs),
        ]);
        let alone = aloneFirst;
        if (alone.error && !peerFirst.error) {
            const first = asPeerOutputs(peerFirst.outputs);
            alone = await runWorker(projectDir, stackFile, { preview: false, peerOutputs: first.values, peerSecretOutputNames: first.secretNames, keepIn: o.keepIn }, timeoutMs);
        }
        const seen = alone.error ? { values: {}, secretNames: [] } : asPeerOutputs(alone.outputs);
        peer = await runWorker(projectDir, peerFile, { preview: false, peerOutputs: seen.values, peerSecretOutputNames: seen.secretNames, keepIn: o.keepIn }, timeoutMs);
    }
    const recorded = o.peerOutputs ?? (peer && !peer.error ? peer.outputs : {});
    const served = asPeerOutputs(recorded);
    const main = await runWorker(projectDir, stackFile, { preview, peerOutputs: served.values, peerSecretOutputNames: served.secretNames, lab: o.lab, keepIn: o.keepIn, newestDebianAmi: o.newestDebianAmi }, timeoutMs);
    return { main, peer, stackFile };
}

/** How the CLIs end on an error: 2 for a user's mistake (stack file, config), 1 otherwise. */
export function exitOnError(e: unknown): never {
    if (e instanceof StackFileError) {
        console.error(e.message);
        process.exit(2);
    }
    console.error((e as Error)?.stack ?? e);
    process.exit(1);
}
