// Drives a policy pack through the Analyzer gRPC service, the way the Pulumi engine does:
// start `@pulumi/pulumi/cmd/run-policy-pack <engine> .` in the pack's folder, read the port
// it prints, hand it the stack's config in `configureStack` (the only way the engine does:
// no PULUMI_CONFIG reaches a pack the engine starts), then `analyze` every
// resource and `analyzeStack` once, with properties serialized as on the wire (secrets
// and unknowns marked), so policies meet the same proxies as in a real preview.
import { ChildProcess, spawn } from "child_process";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import { Registration } from "./evaluate";

// Generated stubs shipped with the SDK (no typings).
const analyzerGrpc = require("@pulumi/pulumi/proto/analyzer_grpc_pb");
const analyzerPb = require("@pulumi/pulumi/proto/analyzer_pb");
const { Struct } = require("google-protobuf/google/protobuf/struct_pb");
const { Empty } = require("google-protobuf/google/protobuf/empty_pb");

export type Level = "advisory" | "mandatory" | "disabled" | "remediate";
const LEVELS: Level[] = ["advisory", "mandatory", "disabled", "remediate"];

export interface Diagnostic {
    policy: string;
    pack: string;
    packVersion: string;
    description: string;
    message: string;
    level: Level;
    urn: string;
}

export interface PackInfo {
    name: string;
    version: string;
    policies: Array<{ name: string; level: Level; description: string }>;
}

export interface PolicyRun {
    info: PackInfo;
    diagnostics: Diagnostic[];
}

export interface RunPolicyOptions {
    packDir: string;
    project: string;
    stack: string;
    /** The stack's config as the engine passes it ("ns:key" -> text). */
    config: Record<string, string>;
    preview: boolean;
    timeoutMs?: number;
}

function startPack(o: RunPolicyOptions): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
    const runner = require.resolve("@pulumi/pulumi/cmd/run-policy-pack", { paths: [o.packDir] });
    const child = spawn(process.execPath, [runner, "127.0.0.1:0", "."], {
        cwd: o.packDir,
        env: {
            ...process.env,
            PULUMI_NODEJS_PROJECT: o.project,
            PULUMI_NODEJS_STACK: o.stack,
            PULUMI_NODEJS_DRY_RUN: String(o.preview),
        },
        stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            child.kill("SIGKILL");
            reject(new Error(`policy pack in ${o.packDir} printed no port within ${(o.timeoutMs ?? 90_000) / 1000} s\n${err}`));
        }, o.timeoutMs ?? 90_000);
        child.stdout!.on("data", (d) => {
            out += d;
            const m = /^(\d+)\s*$/m.exec(out);
            if (m) {
                clearTimeout(timer);
                resolve({ child, port: Number(m[1]), stderr: () => err });
            }
        });
        child.on("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`policy pack in ${o.packDir} exited with code ${code} before serving:\n${err}${out}`));
        });
    });
}

function call<T>(client: any, method: string, request: unknown): Promise<T> {
    return new Promise((resolve, reject) => client[method](request, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))));
}

function options(r: Registration) {
    const o = new analyzerPb.AnalyzerResourceOptions();
    o.setParent(r.parent);
    o.setProtect(r.protect);
    o.setIgnorechangesList(r.ignoreChanges);
    o.setAdditionalsecretoutputsList(r.additionalSecretOutputs);
    return o;
}

function diagnosticsOf(resp: any): Diagnostic[] {
    return resp.getDiagnosticsList().map((d: any) => ({
        policy: d.getPolicyname(),
        pack: d.getPolicypackname(),
        packVersion: d.getPolicypackversion(),
        description: d.getDescription(),
        message: d.getMessage(),
        level: LEVELS[d.getEnforcementlevel()] ?? "mandatory",
        urn: d.getUrn(),
    }));
}

/**
 * A running policy pack. `check` sends a set of resources as one preview would:
 * `analyze` per resource (its inputs), then `analyzeStack` (the resulting state).
 */
export class PolicySession {
    private constructor(
        private readonly child: ChildProcess,
        private readonly client: any,
        private readonly stderr: () => string,
        public readonly info: PackInfo,
    ) {}

    static async start(o: RunPolicyOptions): Promise<PolicySession> {
        const { child, port, stderr } = await startPack(o);
        const client = new analyzerGrpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
        try {
            const resp = await call<any>(client, "getAnalyzerInfo", new Empty());
            const info: PackInfo = {
                name: resp.getName(),
                version: resp.getVersion(),
                policies: resp.getPoliciesList().map((p: any) => ({ name: p.getName(), level: LEVELS[p.getEnforcementlevel()], description: p.getDescription() })),
            };
            const configure = new analyzerPb.AnalyzerStackConfigureRequest();
            configure.setStack(o.stack);
            configure.setProject(o.project);
            configure.setOrganization("organization");
            configure.setDryRun(o.preview);
            for (const [k, v] of Object.entries(o.config)) configure.getConfigMap().set(k, v);
            await call(client, "configureStack", configure);
            return new PolicySession(child, client, stderr, info);
        } catch (e) {
            client.close();
            child.kill("SIGKILL");
            throw new Error(`policy pack did not answer getAnalyzerInfo or configureStack: ${(e as Error).message}\n${stderr()}`);
        }
    }

    async check(registrations: Registration[]): Promise<Diagnostic[]> {
        const diagnostics: Diagnostic[] = [];
        try {
            for (const r of registrations) {
                const req = new analyzerPb.AnalyzeRequest();
                req.setUrn(r.urn);
                req.setType(r.type);
                req.setName(r.name);
                req.setProperties(Struct.fromJavaScript(r.inputs));
                req.setOptions(options(r));
                diagnostics.push(...diagnosticsOf(await call(this.client, "analyze", req)).map((d) => ({ ...d, urn: d.urn || r.urn })));
            }
            const stackReq = new analyzerPb.AnalyzeStackRequest();
            stackReq.setResourcesList(
                registrations.map((r) => {
                    const res = new analyzerPb.AnalyzerResource();
                    res.setUrn(r.urn);
                    res.setType(r.type);
                    res.setName(r.name);
                    res.setProperties(Struct.fromJavaScript({ ...r.outputs, ...(r.id ? { id: r.id } : {}) }));
                    res.setOptions(options(r));
                    // As the engine sends them: the pack resolves these URNs to resources.
                    res.setDependenciesList(r.dependencies);
                    for (const [key, urns] of Object.entries(r.propertyDependencies)) res.getPropertydependenciesMap().set(key, new analyzerPb.AnalyzerPropertyDependencies().setUrnsList(urns));
                    return res;
                }),
            );
            diagnostics.push(...diagnosticsOf(await call(this.client, "analyzeStack", stackReq)));
        } catch (e) {
            throw new Error(`policy pack failed: ${(e as Error).message}\n${this.stderr()}`);
        }
        return diagnostics;
    }

    close(): void {
        this.client.close();
        this.child.kill("SIGTERM");
    }
}

/** Starts the pack, checks one set of resources, stops the pack. */
export async function runPolicies(registrations: Registration[], o: RunPolicyOptions): Promise<PolicyRun> {
    const session = await PolicySession.start(o);
    try {
        return { info: session.info, diagnostics: await session.check(registrations) };
    } finally {
        session.close();
    }
}

export const POLICY_PACK_DIR = path.resolve(__dirname, "../../policies");

/** Violations grouped per pack the way `pulumi preview` prints them. */
export function formatPolicyRun(run: PolicyRun, registrations: Registration[], packLabel: string): string {
    const byUrn = new Map(registrations.map((r) => [r.urn, r]));
    const mandatory = run.diagnostics.some((d) => d.level === "mandatory");
    const lines = [`Policies:`, `    ${mandatory ? "❌" : "✅"} ${run.info.name}@v${run.info.version} (local: ${packLabel})`];
    const order: Level[] = ["mandatory", "advisory"];
    const sorted = [...run.diagnostics].sort((a, b) => order.indexOf(a.level) - order.indexOf(b.level) || a.policy.localeCompare(b.policy));
    for (const d of sorted) {
        const r = byUrn.get(d.urn);
        lines.push(`        - [${d.level}]  ${d.policy}  (${r ? `${r.type}: ${r.name}` : d.urn || "stack"})`);
        for (const m of d.message.split("\n")) lines.push(`          ${m}`);
    }
    if (run.diagnostics.length === 0) lines.push(`        ${run.info.policies.length} policies, no violations`);
    return lines.join("\n");
}
