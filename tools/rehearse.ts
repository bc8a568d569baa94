// npm run rehearse [-- --keep] [--report <file>]
// The embedded default: builds the lab on this machine (root, Debian), provisions both
// sites through the program's own remote commands, checks from other lab hosts that the
// firewalls admit exactly what was rendered, runs the program again to show it changes
// nothing, flips the edges under a write load (cutover, then rollback) and measures what
// the clients saw, writes a JSON report, and tears the lab down (also on failure or Ctrl-C).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { labHostRules, probeFirewalls } from "../lab/firewall-check";
import { meshTargets, unreachablePairs } from "../lab/mesh-check";
import { unwrapSecrets } from "./offline";
import { Lab, LabError, checkMachine } from "../lab/lab";
import { LAB_STACKS, provision } from "../lab/runtime";
import { FlipFigures, edgeAdmin, flipFigures, recordedWrites, underLoad } from "../lab/flip";
import { Series, timelineSvg } from "./timeline";

const ROOT = path.resolve(__dirname, "..");

function parseArgs(argv: string[]) {
    let keep = false;
    let report = path.join(ROOT, "rehearsal-report.json");
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--keep") keep = true;
        else if (argv[i] === "--report") report = path.resolve(argv[++i] ?? "");
        else {
            console.error(`unknown argument ${JSON.stringify(argv[i])}\nusage: npm run rehearse [-- --keep] [--report <file>]`);
            process.exit(2);
        }
    }
    return { keep, report };
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

async function main() {
    const args = parseArgs(process.argv.slice(2));
    const problems = checkMachine();
    if (problems.length > 0) {
        console.error(`npm run rehearse cannot run here:\n  ${problems.join("\n  ")}`);
        process.exit(2);
    }
    const install = spawnSync("bash", [path.join(ROOT, "lab/install-packages.sh")], { stdio: "inherit" });
    if (install.status !== 0) process.exit(2);

    const lab = new Lab(undefined, (l) => console.log(l));
    let tearingDown = false;
    const teardown = async (signal: string) => {
        if (tearingDown) return;
        tearingDown = true;
        console.error(`\n${signal}: tearing the lab down`);
        await Lab.down();
        process.exit(130);
    };
    process.on("SIGINT", () => void teardown("interrupted"));
    process.on("SIGTERM", () => void teardown("terminated"));

    const report: Record<string, unknown> = { startedAt: new Date().toISOString() };
    try {
        console.log("== building the lab");
        let t = Date.now();
        await lab.up();
        report.lab = { hosts: lab.plan.hosts.map((h) => ({ name: h.name, site: h.site, role: h.role, address: h.address })), buildSeconds: seconds(Date.now() - t) };

        // old, new, old, new: old learns new's mesh members on its second run; new's replica
        // waits until then and seeds on new's second run.
        const runs: Array<Record<string, unknown>> = [];
        const last: Record<string, Record<string, unknown>> = {};
        for (const site of ["old", "new", "old", "new"] as const) {
            console.log(`== provisioning ${LAB_STACKS[site]} through the program`);
            const p = await provision(lab, LAB_STACKS[site]);
            last[site] = unwrapSecrets(p.evaluation.outputs);
            runs.push({ stack: LAB_STACKS[site], seconds: seconds(p.ms), steps: p.runs.map((r) => ({ host: r.host, step: r.step, action: r.action, seconds: seconds(r.ms) })) });
        }
        report.provisioning = runs;

        console.log("== checking the mesh: every member reaches every other over its mesh address");
        t = Date.now();
        const members = [...meshTargets(last.old), ...meshTargets(last.new)];
        const missing = await unreachablePairs(lab, members, members, 60_000);
        report.mesh = { members: members.length, pairs: members.length * (members.length - 1), unreachable: missing.filter((m) => !m.startsWith("---")), seconds: seconds(Date.now() - t) };
        console.log(`   ${members.length} members, ${members.length * (members.length - 1)} pairs, ${missing.length === 0 ? "all reachable" : `UNREACHABLE: ${missing.join(", ")}`}`);

        console.log("== checking the host firewalls from the operator, a client, and hosts of both sites");
        t = Date.now();

        const targets = lab.plan.hosts.filter((h) => !h.spare).map((h) => ({ name: h.name, address: h.address, rules: labHostRules(lab.plan, h) }));
        const probes = await probeFirewalls(lab, targets, [5432, 6379, 9999]);
        const wrong = probes.filter((p) => p.open !== p.expected);
        report.firewall = { probes: probes.length, open: probes.filter((p) => p.open).length, mismatches: wrong, seconds: seconds(Date.now() - t) };
        console.log(`   ${probes.length} probes, ${probes.filter((p) => p.open).length} open as rendered, ${wrong.length} mismatches`);
        for (const w of wrong) console.log(`   MISMATCH ${w.from} -> ${w.to}:${w.port} is ${w.open ? "open" : "closed"}, rendered ${w.expected ? "open" : "closed"}`);

        console.log("== running the program again with unchanged config");
        const again = [];
        for (const site of ["old", "new"] as const) again.push(...(await provision(lab, LAB_STACKS[site])).runs);
        const ran = again.filter((r) => r.action !== "unchanged");
        report.rerun = { steps: again.length, ran: ran.length };
        console.log(`   ${again.length} steps, ${ran.length} ran`);

        // The edges' part of the cutover: hold writes, switch, release. The database part
        // (freeze, catch-up, promotion) is not automated yet; one second stands in for it.
        console.log("== flipping the edges under a write load: cutover (old -> new), then rollback (new -> old)");
        const edges = lab.plan.hosts.filter((h) => h.role === "edge" && !h.spare);
        const apps = lab.plan.hosts.filter((h) => h.role === "app" && !h.spare).map((h) => h.name);
        const url = `http://${edges.find((h) => h.site === "old")!.address}/`;
        const flips: Record<string, FlipFigures & { holdMs: number }> = {};
        const series: Series[] = [];
        for (const [name, to] of [["cutover", "new"], ["rollback", "old"]] as const) {
            const marks: Series["marks"] = [];
            const step = async (label: string, command: string) => {
                marks.push({ label, at: Date.now() });
                for (const e of edges) await edgeAdmin(lab, e.name, command);
            };
            const writes = await underLoad(lab, { url, client: name, rate: 50, seconds: 8 }, async () => {
                await new Promise((r) => setTimeout(r, 2000));
                await step("hold writes", "cutover hold 5000");
                await new Promise((r) => setTimeout(r, 1000));
                await step(`route to ${to}`, `cutover live ${to}`);
                await step("release", "cutover hold off");
                marks.push({ label: "done", at: Date.now() });
            });
            const [from, until] = [marks[0].at, marks[marks.length - 1].at];
            flips[name] = { ...flipFigures(writes, await recordedWrites(lab, apps, name), from, until), holdMs: until - from };
            series.push({ title: `${name}: edges flipped to ${to} under 50 writes/s`, writes, marks });
            const f = flips[name];
            console.log(`   ${name}: ${f.writes} writes, ${f.failed} failed, ${f.lost} lost, ${f.duplicated} duplicated; held ${f.holdMs} ms; latency inside the window p50 ${f.window.p50Ms} / p99 ${f.window.p99Ms} / max ${f.window.maxMs} ms; then served by ${f.servedAfter.join(", ")}`);
        }
        report.edgeFlip = { ratePerSecond: 50, clientsVia: url, ...flips };
        const svg = path.join(path.dirname(args.report), "rehearsal-timeline.svg");
        fs.writeFileSync(svg, timelineSvg(series));
        console.log(`   timeline: ${path.relative(process.cwd(), svg)}`);
        const flipOk = Object.values(flips).every((f) => f.failed === 0 && f.lost === 0 && f.duplicated === 0);

        report.ok = wrong.length === 0 && ran.length === 0 && missing.length === 0 && flipOk;
        if (!report.ok) process.exitCode = 1;
    } catch (e) {
        report.ok = false;
        report.error = (e as Error).message;
        console.error(`\nrehearsal failed: ${(e as Error).message}`);
        process.exitCode = 1;
    } finally {
        fs.writeFileSync(args.report, `${JSON.stringify(report, null, 2)}\n`);
        console.log(`\nreport: ${path.relative(process.cwd(), args.report)}`);
        if (!args.keep && !tearingDown) {
            await Lab.down();
            console.log("lab torn down");
        } else if (args.keep) {
            console.log("lab kept (--keep); remove it with: npm run lab -- down");
        }
    }
}

main().catch(async (e) => {
    console.error(e instanceof LabError ? e.message : (e?.stack ?? e));
    await Lab.down();
    process.exit(1);
});
