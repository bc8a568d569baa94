// Runs index.ts for one stack under the SDK's mock runtime and records what the
// engine would receive: every registration with its parent, options and serialized
// inputs (secrets and unknowns still marked), and the stack's serialized outputs.
// One evaluation at a time per process: the SDK's runtime state is process-global, and
// setMocks resets it for each (as the automation API does for inline programs).
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { CloudMocks, MockOptions } from "./mocks";
import { StackFile } from "./stackfile";

export const PROJECT = "cutover";

export interface Registration {
    urn: string;
    type: string;
    name: string;
    /** URN of the parent ("" for the stack itself). */
    parent: string;
    custom: boolean;
    /** Serialized as on the wire: secrets as {"4dabf18193072939515e22adb298388d": "1b47...", value}, unknowns as the unknown sentinel. */
    inputs: Record<string, unknown>;
    /** What the (mock) provider returned, serialized the same way. */
    outputs: Record<string, unknown>;
    id: string;
    provider: string;
    protect: boolean;
    ignoreChanges: string[];
    /** The `import` option: an existing cloud resource adopted rather than created. */
    importId: string;
    additionalSecretOutputs: string[];
    /** URNs it waits for (dependsOn and the resources its inputs came from). */
    dependencies: string[];
    /** Per input property: the URNs of the resources its value came from. */
    propertyDependencies: Record<string, string[]>;
    /** "read" for StackReference and other reads. */
    mode: "register" | "read";
}

/** A registration request's per-property dependencies as plain data. */
function propertyDependenciesOf(req: any): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    req.getPropertydependenciesMap().forEach((deps: any, key: string) => (out[key] = deps.getUrnsList()));
    return out;
}

export interface Evaluation {
    stack: string;
    preview: boolean;
    registrations: Registration[];
    /** The stack's outputs, serialized (secrets marked). */
    outputs: Record<string, unknown>;
    error?: { kind: "config" | "program"; message: string };
    /** The evaluating process's peak resident memory (MB), for the benchmarks. */
    peakMb?: number;
}

type Callback = (err: unknown, res: any) => void;

// Errors thrown inside apply callbacks surface as unhandled rejections, counted against the
// evaluation running. The listener stays for the process's life, so a late one cannot crash it.
let failures: unknown[] = [];
process.on("unhandledRejection", (e: unknown) => failures.push(e));

function structToJs(s: { toJavaScript(): Record<string, unknown> } | undefined): Record<string, unknown> {
    return s ? s.toJavaScript() : {};
}

export async function evaluate(projectDir: string, stackFile: StackFile, options: MockOptions): Promise<Evaluation> {
    const registrations: Registration[] = [];
    let stackOutputs: Record<string, unknown> = {};
    let stackUrn = "";

    const mocks = new CloudMocks(options, stackFile.stack);
    await pulumi.runtime.setMocks(mocks, PROJECT, stackFile.stack, options.preview);
    pulumi.runtime.setAllConfig(stackFile.config, stackFile.secretKeys);

    // Listen on the mock monitor's RPCs, as the engine would see them.
    const monitor = pulumi.runtime.getMonitor() as any;
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, cb: Callback) =>
        register(req, (err: unknown, res: any) => {
            if (!err) {
                const r: Registration = {
                    urn: res.getUrn(),
                    type: req.getType(),
                    name: req.getName(),
                    parent: req.getParent(),
                    custom: req.getCustom(),
                    inputs: structToJs(req.getObject()),
                    outputs: structToJs(res.getObject()),
                    id: res.getId(),
                    provider: req.getProvider(),
                    protect: req.getProtect() ?? false,
                    ignoreChanges: req.getIgnorechangesList(),
                    importId: req.getImportid(),
                    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                    dependencies: req.getDependenciesList(),
                    propertyDependencies: propertyDependenciesOf(req),
                    mode: "register",
                };
                registrations.push(r);
                if (r.type === "pulumi:pulumi:Stack") stackUrn = r.urn;
            }
            cb(err, res);
        });
    const read = monitor.readResource.bind(monitor);
    monitor.readResource = (req: any, cb: Callback) =>
        read(req, (err: unknown, res: any) => {
            if (!err) {
                registrations.push({
                    urn: res.getUrn(), type: req.getType(), name: req.getName(), parent: req.getParent(), custom: true,
                    inputs: structToJs(req.getProperties()), outputs: structToJs(res.getProperties()), id: req.getId(),
                    provider: req.getProvider(), protect: false, ignoreChanges: [], importId: "",
                    additionalSecretOutputs: req.getAdditionalsecretoutputsList(), dependencies: req.getDependenciesList(), propertyDependencies: {}, mode: "read",
                });
            }
            cb(err, res);
        });
    const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
    monitor.registerResourceOutputs = (req: any, cb: Callback) => {
        if (req.getUrn() === stackUrn) stackOutputs = structToJs(req.getOutputs());
        return registerOutputs(req, cb);
    };

    failures = [];
    const { runInPulumiStack } = require("@pulumi/pulumi/runtime/stack") as { runInPulumiStack(init: () => Promise<unknown>): Promise<unknown> };
    const { waitForRPCs } = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> };
    let error: Evaluation["error"];
    // The SDK captures a stack trace for every resource (its source position; it lifts the
    // frame limit for that) and every promise it tracks (leak reports); the mocks use neither,
    // and capturing and source-mapping them was a third of a large site's evaluation. So no
    // frames while the program runs, unless CUTOVER_STACK_FRAMES=1 (a program error then
    // shows where it was thrown).
    const frames = process.env.CUTOVER_STACK_FRAMES === "1";
    const limit = Error.stackTraceLimit;
    const format = Error.prepareStackTrace;
    if (!frames) {
        Error.stackTraceLimit = 0;
        Error.prepareStackTrace = (err) => String(err);
    }
    try {
        // As the runner does: a program that exports a function is called and awaited.
        const exported = (await runInPulumiStack(async () => {
            const program = require(path.join(projectDir, "index.ts"));
            return typeof program === "function" ? await program() : program;
        })) as Record<string, unknown> | undefined;
        // An apply that throws (a check against the peer's outputs) rejects its output: wait
        // for every exported output so such errors are caught here, not after we stop listening.
        for (const v of Object.values(exported ?? {})) {
            if (pulumi.Output.isInstance(v)) await (v as unknown as { promise(): Promise<unknown> }).promise();
        }
        await waitForRPCs();
        // Let apply callbacks that throw after the last RPC report in.
        await new Promise((r) => setTimeout(r, 50));
        if (failures.length === 0) await mocks.finish();
    } catch (e) {
        failures.unshift(e);
    }
    // As the engine does after a failed step: what is still running on hosts finishes and is recorded.
    if (failures.length > 0) await mocks.settle();
    Error.stackTraceLimit = limit;
    Error.prepareStackTrace = format;
    if (failures.length > 0) {
        const first = failures[0] as Error;
        const isConfig = first instanceof pulumi.RunError || first?.name === "ConfigError";
        const hint = frames ? "" : "\n(run again with CUTOVER_STACK_FRAMES=1 for the frames of this error)";
        error = { kind: isConfig ? "config" : "program", message: isConfig ? first.message : `${String(first?.stack ?? first)}${hint}` };
    }
    return { stack: stackFile.stack, preview: options.preview, registrations, outputs: stackOutputs, error };
}
