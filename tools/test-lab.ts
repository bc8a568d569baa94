// npm run test:lab [-- files...]: the lab test files in lanes, each lane a lab of its own
// (CUTOVER_LAB_SLOT) running its files one after another, the lanes side by side. Most of a
// lab test's time is waiting on daemons, SSH and load that runs for a set time, so two labs
// share this machine's cores well. CUTOVER_LAB_LANES sets the number of lanes (default 2).
// The files of a chain (LAB_CHAINS) run in one lane in the chain's order and hand the
// provisioned baseline lab on (tests/lab/baseline.ts): one build serves them all. Each lane's
// lab is torn down when the lane ends.
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";

/**
 * Seconds each file took in a run of the lab lanes (`npm run test:lab`) on CI, each file in its
 * own process (the run of stop 27's successor, a machine about 1.5x slower than before), to
 * balance the lanes; a new file counts as 150. runbook's is its time on the lab handed on.
 */
export const LAB_FILE_SECONDS: Record<string, number> = {
    "rehearse.test.ts": 457,
    "engine.test.ts": 308,
    "runbook.test.ts": 243,
    "redis.test.ts": 206,
    "runbook-postgres.test.ts": 202,
    "mariadb.test.ts": 151,
    "lab.test.ts": 139,
    "media.test.ts": 55,
    "postgres.test.ts": 99,
    "mesh.test.ts": 78,
    "adopt.test.ts": 73,
    "backup.test.ts": 24,
    "volume.test.ts": 4,
    "autoscaling.test.ts": 90,
};

/**
 * Files that share one lab, in this order: each but the last hands the baseline (the default
 * lab stacks provisioned old, new, old, new) on to the next. lab.test.ts provisions it as its
 * test; the runbook's faults leave the databases wherever the last one left them.
 */
export const LAB_CHAINS: string[][] = [["lab.test.ts", "mesh.test.ts", "runbook.test.ts"]];

/** The files as units that run in one lane: a chain's files (those given) together in its order, any other file alone. */
function units(files: string[]): string[][] {
    const out: string[][] = [];
    const chained = new Set<string>();
    for (const chain of LAB_CHAINS) {
        const unit = chain.map((name) => files.find((f) => path.basename(f) === name)).filter((f): f is string => f !== undefined);
        unit.forEach((f) => chained.add(f));
        if (unit.length > 0) out.push(unit);
    }
    return [...out, ...files.filter((f) => !chained.has(f)).map((f) => [f])];
}

/** Longest unit first, each to the lane with the least so far. */
export function lanesFor(files: string[], lanes: number): string[][] {
    const weight = (unit: string[]) => unit.reduce((sum, f) => sum + (LAB_FILE_SECONDS[path.basename(f)] ?? 150), 0);
    const out: string[][] = Array.from({ length: lanes }, () => []);
    const load = new Array<number>(lanes).fill(0);
    for (const unit of units(files).sort((a, b) => weight(b) - weight(a))) {
        const i = load.indexOf(Math.min(...load));
        out[i].push(...unit);
        load[i] += weight(unit);
    }
    return out.filter((l) => l.length > 0);
}

function lanesWanted(value: string | undefined): number {
    if (value === undefined || value === "") return 2;
    if (!/^[1-9]$/.test(value)) {
        console.error(`CUTOVER_LAB_LANES: ${JSON.stringify(value)} is not allowed: a number of lanes, 1-9`);
        process.exit(2);
    }
    return Number(value);
}

/** Lines of a failed file's report kept for the summary: CI shows only the end of a run's output. */
const FAILURE_LINES = 80;

/**
 * Runs a command to its end, each whole line of its output marked with the lane; gives its exit
 * code and the lines of the spec reporter's "failing tests" part (the failures and their errors).
 */
function relayed(label: string, argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; failures: string[] }> {
    return new Promise((resolve) => {
        const child = spawn(argv[0], argv.slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
        const failures: string[] = [];
        let inFailures = false;
        const relay = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream) => {
            let rest = "";
            const line = (l: string) => {
                out.write(`${label} ${l}\n`);
                if (out !== process.stdout) return;
                if (/^\u2716 failing tests:/.test(l)) inFailures = true;
                if (inFailures && failures.length < FAILURE_LINES && !/^\s+at /.test(l)) failures.push(l);
            };
            stream.on("data", (d) => {
                const lines = (rest + d).split("\n");
                rest = lines.pop() ?? "";
                lines.forEach(line);
            });
            stream.on("end", () => rest && line(rest));
        };
        relay(child.stdout, process.stdout);
        relay(child.stderr, process.stderr);
        child.on("close", (code) => resolve({ code: code ?? 1, failures }));
    });
}

interface FileResult {
    file: string;
    code: number;
    seconds: number;
    failures: string[];
}

/** The lane's files one after another, each in a test process of its own (so a chain keeps its order); then the lane's lab is torn down. */
async function runLane(slot: number, files: string[]): Promise<FileResult[]> {
    const label = `[lab ${slot}]`;
    console.log(`${label} ${files.map((f) => path.basename(f)).join(", ")}`);
    const env = { ...process.env, CUTOVER_LAB_SLOT: String(slot), CUTOVER_LAB_HAND_ON: "1" };
    const results: FileResult[] = [];
    for (const file of files) {
        const started = Date.now();
        const { code, failures } = await relayed(label, [process.execPath, "--import", "tsx", "--test", "--test-reporter=spec", file], env);
        results.push({ file, code, seconds: Math.round((Date.now() - started) / 1000), failures });
    }
    await relayed(label, [process.execPath, "--import", "tsx", path.resolve(__dirname, "lab.ts"), "down"], env);
    return results;
}

async function main() {
    const args = process.argv.slice(2);
    const dir = path.resolve(__dirname, "../tests/lab");
    const files = args.length > 0 ? args.map((f) => path.resolve(f)) : fs.readdirSync(dir).filter((f) => f.endsWith(".test.ts")).sort().map((f) => path.join(dir, f));
    for (const f of files) {
        if (!fs.existsSync(f)) {
            console.error(`test:lab: no such file ${f}`);
            process.exit(2);
        }
    }
    const lanes = lanesFor(files, lanesWanted(process.env.CUTOVER_LAB_LANES));
    const results = await Promise.all(lanes.map((l, i) => runLane(i + 1, l)));
    console.log("lab lanes:");
    results.forEach((lane, i) => {
        const failed = lane.filter((r) => r.code !== 0);
        console.log(`  [lab ${i + 1}] ${failed.length === 0 ? "passed" : `FAILED: ${failed.map((r) => path.basename(r.file)).join(", ")}`} in ${lane.reduce((sum, r) => sum + r.seconds, 0)} s`);
        for (const r of lane) console.log(`    ${String(r.seconds).padStart(5)} s  ${path.basename(r.file)}${r.code === 0 ? "" : ` (exit ${r.code})`}`);
    });
    // The failures again, last: a long run's log is often read from its end.
    for (const r of results.flat().filter((r) => r.code !== 0)) {
        console.log(`${path.basename(r.file)} failed:`);
        for (const l of r.failures.length > 0 ? r.failures : ["(no failing test reported: the file's process itself failed; see its output above)"]) console.log(`  ${l}`);
    }
    process.exit(results.every((lane) => lane.every((r) => r.code === 0)) ? 0 : 1);
}

if (require.main === module) main();
