// npm run test:lab [-- files...]: the lab test files in lanes, each lane a lab of its own
// (CUTOVER_LAB_SLOT) running its files one after another, the lanes side by side. Most of a
// lab test's time is waiting on daemons, SSH and load that runs for a set time, so two labs
// share this machine's cores well. CUTOVER_LAB_LANES sets the number of lanes (default 2).
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";

/** Seconds each file took in two lanes side by side (stop 26), to balance the lanes; a new file counts as 150. */
export const LAB_FILE_SECONDS: Record<string, number> = {
    "rehearse.test.ts": 409,
    "runbook.test.ts": 308,
    "engine.test.ts": 233,
    "runbook-postgres.test.ts": 162,
    "lab.test.ts": 118,
    "mariadb.test.ts": 108,
    "redis.test.ts": 103,
    "cloud.test.ts": 82,
    "mesh.test.ts": 82,
    "postgres.test.ts": 79,
    "media.test.ts": 63,
    "adopt.test.ts": 55,
    "backup.test.ts": 38,
    "volume.test.ts": 2,
};

/** Longest first, each to the lane with the least so far. */
export function lanesFor(files: string[], lanes: number): string[][] {
    const weight = (f: string) => LAB_FILE_SECONDS[path.basename(f)] ?? 150;
    const out: string[][] = Array.from({ length: lanes }, () => []);
    const load = new Array<number>(lanes).fill(0);
    for (const f of [...files].sort((a, b) => weight(b) - weight(a))) {
        const i = load.indexOf(Math.min(...load));
        out[i].push(f);
        load[i] += weight(f);
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

function runLane(slot: number, files: string[]): Promise<{ code: number; seconds: number }> {
    const started = Date.now();
    const label = `[lab ${slot}]`;
    console.log(`${label} ${files.map((f) => path.basename(f)).join(", ")}`);
    return new Promise((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=1", ...files], {
            env: { ...process.env, CUTOVER_LAB_SLOT: String(slot) },
            stdio: ["ignore", "pipe", "pipe"],
        });
        // Whole lines only, each marked with its lane.
        const relay = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream) => {
            let rest = "";
            stream.on("data", (d) => {
                const lines = (rest + d).split("\n");
                rest = lines.pop() ?? "";
                for (const l of lines) out.write(`${label} ${l}\n`);
            });
            stream.on("end", () => rest && out.write(`${label} ${rest}\n`));
        };
        relay(child.stdout, process.stdout);
        relay(child.stderr, process.stderr);
        child.on("close", (code) => resolve({ code: code ?? 1, seconds: Math.round((Date.now() - started) / 1000) }));
    });
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
    results.forEach((r, i) => console.log(`  [lab ${i + 1}] ${r.code === 0 ? "passed" : `FAILED (exit ${r.code})`} in ${r.seconds} s: ${lanes[i].map((f) => path.basename(f)).join(", ")}`));
    process.exit(results.every((r) => r.code === 0) ? 0 : 1);
}

if (require.main === module) main();
