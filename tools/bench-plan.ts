// npm run bench:plan [-- --hosts 10,100,500] [--providers existing,clouds]  (a benchmark, not a test)
// Generated stack pairs of N hosts per site, planned offline as `npm run plan -- --stack new`
// does (new alone, old seeing it, new seeing old), then the policy pack on new's preview.
// For each: seconds of the plan and of the policy run, the evaluations' peak memory, the
// resources of new, and the bytes of host text (every script and stdin that reaches a host).
// Prints a table and writes bench-plan.json.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { hostAddress, parseCidr } from "../components/cidr";
import { Evaluation, endIdleWorkers, evaluateStack, unwrapSecrets } from "./offline";
import { POLICY_PACK_DIR, runPolicies } from "./offline/analyzer";
import { PROJECT } from "./offline/evaluate";

type Provider = "existing" | "clouds";

interface Row {
    provider: Provider;
    hostsPerSite: number;
    resources: number;
    planSeconds: number;
    policySeconds: number;
    peakMb: number;
    hostTextBytes: number;
    hostTextBytesPerHost: number;
    msPerHost: number;
}

const SITES = {
    old: { network: "10.110.0.0/16", siteRange: "10.250.16.0/20" },
    new: { network: "10.20.0.0/16", siteRange: "10.250.32.0/20" },
} as const;

/** How a site of n hosts splits into roles: an edge per 50 hosts (at least 2), one database host, the rest apps. */
export function roleCounts(n: number): { edge: number; app: number; db: number } {
    const edge = Math.max(2, Math.ceil(n / 50));
    return { edge, db: 1, app: n - edge - 1 };
}

export function benchStackConfig(provider: Provider, site: "old" | "new", n: number): Record<string, unknown> {
    const s = SITES[site];
    const counts = roleCounts(n);
    const common: Record<string, unknown> = {
        "cutover:site": site,
        "cutover:peer": `organization/cutover/${site === "old" ? "new" : "old"}`,
        "cutover:adminCidrs": ["203.0.113.0/28"],
        "cutover:network": { cidr: s.network },
        "cutover:edge": { proxied: false, ...(provider === "existing" ? { manage: true } : {}) },
        "cutover:database": { engine: "mariadb", phase: site === "old" ? "primary" : "replica" },
        "cutover:cache": { engine: "redis", phase: site === "old" ? "primary" : "replica" },
        "cutover:mesh": { cidr: "10.250.0.0/16", siteRange: s.siteRange },
        "cutover:dns": { zoneId: "0123456789abcdef0123456789abcdef", zone: "example.com", ...(site === "new" ? { names: ["@", "www"] } : {}) },
        ...(site === "new" ? { "cutover:live": "old" } : {}),
    };
    if (provider === "existing") {
        let i = 0;
        const hosts = (["edge", "app", "db"] as const).flatMap((role) =>
            Array.from({ length: counts[role] }, (_, k) => {
                const a = hostAddress(parseCidr(s.network)!, 16 + i++);
                return { name: `${site}-${role}-${k + 1}`, role, publicAddress: a, privateAddress: a };
            }),
        );
        return { ...common, "cutover:provider": "existing", "cutover:sshPrivateKey": { secure: "offline" }, "cutover:hosts": hosts };
    }
    const aws = site === "new";
    return {
        ...common,
        "cutover:provider": aws ? "aws" : "digitalocean",
        "cutover:region": aws ? "eu-west-1" : "ams3",
        "cutover:sshPublicKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFQOBVhftVl+bNa0uW9lwfJs7/Cmib41uK9N40u/W+r9 ops@example.com"],
        "cutover:pools": {
            edge: { count: counts.edge, size: aws ? "t3.medium" : "s-2vcpu-4gb" },
            app: { count: counts.app, size: aws ? "m6i.xlarge" : "s-4vcpu-8gb" },
            db: { count: counts.db, size: aws ? "r6i.xlarge" : "m-4vcpu-32gb" },
        },
    };
}

/** Bytes of every script and stdin the commands carry to hosts. */
export function hostTextBytes(e: Evaluation): number {
    let bytes = 0;
    for (const r of e.registrations) {
        if (r.type !== "command:remote:Command") continue;
        const inputs = unwrapSecrets(r.inputs) as Record<string, unknown>;
        for (const k of ["create", "update", "delete", "stdin"]) if (typeof inputs[k] === "string") bytes += Buffer.byteLength(inputs[k] as string);
    }
    return bytes;
}

async function benchOne(provider: Provider, n: number): Promise<Row> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-bench-plan-"));
    for (const site of ["old", "new"] as const) fs.writeFileSync(path.join(dir, `Pulumi.${site}.yaml`), YAML.stringify({ config: benchStackConfig(provider, site, n) }));
    const timeoutMs = 30 * 60_000;
    // Each case in processes of its own, so its peak memory is its own.
    endIdleWorkers();
    let started = Date.now();
    const plan = await evaluateStack({ stack: "new", stackDir: dir, timeoutMs });
    const planSeconds = (Date.now() - started) / 1000;
    for (const e of [plan.main, plan.peer]) if (e?.error) throw new Error(`${provider}, ${n} hosts per site: ${e.stack}: ${e.error.message}`);
    started = Date.now();
    const preview = await evaluateStack({ stack: "new", stackDir: dir, preview: true, peerOutputs: plan.peer!.outputs, timeoutMs });
    await runPolicies(preview.main.registrations, { packDir: POLICY_PACK_DIR, project: PROJECT, stack: "new", config: preview.stackFile.config, preview: true });
    const policySeconds = (Date.now() - started) / 1000;
    fs.rmSync(dir, { recursive: true, force: true });
    const bytes = hostTextBytes(plan.main);
    return {
        provider,
        hostsPerSite: n,
        resources: plan.main.registrations.length,
        planSeconds: Number(planSeconds.toFixed(1)),
        policySeconds: Number(policySeconds.toFixed(1)),
        peakMb: Math.max(...[plan.main, plan.peer, preview.main].map((e) => e?.peakMb ?? 0)),
        hostTextBytes: bytes,
        hostTextBytesPerHost: Math.round(bytes / n),
        msPerHost: Math.round((planSeconds * 1000) / (2 * n)),
    };
}

function listArg(argv: string[], name: string, fallback: string): string[] {
    const i = argv.indexOf(name);
    return (i >= 0 ? (argv[i + 1] ?? "") : fallback).split(",").filter(Boolean);
}

async function main() {
    const argv = process.argv.slice(2);
    const sizes = listArg(argv, "--hosts", "10,100,500").map(Number);
    const providers = listArg(argv, "--providers", "existing,clouds") as Provider[];
    for (const n of sizes) if (!Number.isInteger(n) || n < 4 || n > 1000) throw new Error(`--hosts: ${n} is not allowed: hosts per site, 4 to 1000`);
    for (const p of providers) if (p !== "existing" && p !== "clouds") throw new Error(`--providers: ${JSON.stringify(p)} is not allowed: existing or clouds`);
    const rows: Row[] = [];
    console.log("provider  hosts/site  resources  plan s  policy s  peak MB  host text MB  KB/host  ms/host");
    for (const provider of providers) {
        for (const n of sizes) {
            const r = await benchOne(provider, n);
            rows.push(r);
            console.log(`${r.provider.padEnd(9)} ${String(n).padStart(10)} ${String(r.resources).padStart(10)} ${r.planSeconds.toFixed(1).padStart(7)} ${r.policySeconds.toFixed(1).padStart(9)} ${String(r.peakMb).padStart(8)} ${(r.hostTextBytes / 1e6).toFixed(1).padStart(13)} ${(r.hostTextBytesPerHost / 1e3).toFixed(1).padStart(8)} ${String(r.msPerHost).padStart(8)}`);
        }
    }
    fs.writeFileSync("bench-plan.json", `${JSON.stringify({ machine: { cpus: os.cpus().length, node: process.version }, rows }, null, 2)}\n`);
    console.log("wrote bench-plan.json");
}

if (require.main === module) {
    main().catch((e) => {
        console.error(e?.message ?? e);
        process.exit(1);
    });
}
