// npm run rehearse [-- --keep] [--report <file>] [--engine offline|pulumi] [--no-clouds] [--rate N]
// The embedded default: builds the lab on this machine (root, Debian), provisions both
// sites through the program's own remote commands, checks from other lab hosts that the
// firewalls admit exactly what was rendered, runs the program again to show it changes
// nothing, flips the edges under a write load (cutover, then rollback) and measures what
// the clients saw, writes a JSON report, and tears the lab down (also on failure or Ctrl-C).
// Then the reference stacks' migration, DigitalOcean to AWS, on a fresh lab as a cloud (every
// host created by the program and booted through cloud-init): report's "clouds" part
// (--no-clouds leaves it out).
// --engine pulumi then does it again on a fresh lab through the real Pulumi engine
// (npm run engine:install): its `pulumi up` timings and flip figures go into the report's
// "engine" part, beside the offline executor's.
// --rate: the clients' writes per second during every flip (default 50).
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { labHostRules, probeFirewalls } from "../lab/firewall-check";
import { meshTargets, unreachablePairs } from "../lab/mesh-check";
import { unwrapSecrets } from "./offline";
import { Lab, LabError, checkMachine } from "../lab/lab";
import { LAB_STACKS, provision } from "../lab/runtime";
import { CLOUD_HOSTS, LAB_CLOUD_STACKS, labPlan } from "../lab/topology";
import { cloudBoots, cloudLogins, dataVolume } from "../lab/cloud-checks";
import { FlipFigures, RedisWriterFigures, flipFigures, flipUnderLoad, heldServedBy, recordedWrites, startRedisWriter, stopRedisWriter } from "../lab/flip";
import { Series, timelineSvg } from "./timeline";
import { Engine, engineFlip, engineSetUp, installedEngine } from "../lab/engine";

const ROOT = path.resolve(__dirname, "..");

const USAGE = "usage: npm run rehearse [-- --keep] [--report <file>] [--engine offline|pulumi] [--no-clouds] [--rate N]";

/** The most --rate asks of the one load generator process (a thread per write). */
const MAX_RATE = 1000;

function parseArgs(argv: string[]) {
    let keep = false;
    let report = path.join(ROOT, "rehearsal-report.json");
    let engine = "offline";
    let clouds = true;
    let rate = 50;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--keep") keep = true;
        else if (argv[i] === "--report") report = path.resolve(argv[++i] ?? "");
        else if (argv[i] === "--engine") engine = argv[++i] ?? "";
        else if (argv[i] === "--no-clouds") clouds = false;
        else if (argv[i] === "--rate") {
            const value = argv[++i] ?? "";
            rate = /^\d+$/.test(value) ? Number(value) : NaN;
            if (!(rate >= 1 && rate <= MAX_RATE)) {
                console.error(`--rate: ${JSON.stringify(value)} is not allowed: writes per second, a whole number from 1 to ${MAX_RATE}\n${USAGE}`);
                process.exit(2);
            }
        } else {
            console.error(`unknown argument ${JSON.stringify(argv[i])}\n${USAGE}`);
            process.exit(2);
        }
    }
    if (engine !== "offline" && engine !== "pulumi") {
        console.error(`--engine: ${JSON.stringify(engine)} is not allowed: offline (the SDK's mocks and the lab's executor) or pulumi (the real engine)\n${USAGE}`);
        process.exit(2);
    }
    const pulumi = engine === "pulumi" ? installedEngine() : undefined;
    if (engine === "pulumi" && !pulumi) {
        console.error("--engine pulumi: the engine is not installed on this machine: run npm run engine:install first");
        process.exit(2);
    }
    return { keep, report, pulumi, clouds, rate };
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

type FlipReport = FlipFigures & { heldServedBy: string[]; error?: string; switchMs: number; steps: Array<{ step: string; host: string; ms: number }>; audit?: Record<string, unknown>; redis?: RedisWriterFigures };

async function main() {
    const args = parseArgs(process.argv.slice(2));
    const problems = checkMachine();
    if (problems.length > 0) {
        console.error(`npm run rehearse cannot run here:\n  ${problems.join("\n  ")}`);
        process.exit(2);
    }
    const install = spawnSync("bash", [path.join(ROOT, "lab/install-packages.sh")], { stdio: "inherit" });
    if (install.status !== 0) process.exit(2);

    let lab = new Lab(undefined, (l) => console.log(l));
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

        // The cutover as an engineer runs it: flip cutover:live in the new stack and run the
        // program (the runbook), with clients writing through the old site's edge; then flip
        // back. First freeze-and-promote on MariaDB with Redis beside it (the reference stacks),
        // then both databases dual-primary (Ghost(Pro)'s master/master), then PostgreSQL
        // freeze-and-promote with Redis beside it (OneSignal's t0..t5); with Redis, a job writer
        // on the outgoing Redis meanwhile.
        const url = `http://${lab.plan.hosts.find((h) => h.role === "edge" && h.site === "old")!.address}/`;
        const strategies: Record<string, Record<string, FlipReport>> = {};
        // In the report from the start, each strategy as it begins: a flip that fails keeps the ones before it (and itself) there.
        const inReport = () => (report.cutover = { ratePerSecond: args.rate, freezeMs: REHEARSAL_FREEZE_MS, clientsVia: url, ...strategies });
        inReport();
        const series: Series[] = [];
        const db = (engine: string, phase: string) => JSON.stringify({ engine, phase });
        const redis = (phase: string) => JSON.stringify({ engine: "redis", phase });
        const scenarios = [
            { strategy: "freeze", client: "freeze", engine: "mariadb", extra: { "cutover:cache": redis("replica") }, runbook: { parity: ["cutover_probe.writes"], ...ROOM } },
            { strategy: "dual-primary", client: "dual", engine: "mariadb", extra: { "cutover:database": db("mariadb", "dual-primary") }, runbook: { parity: ["cutover_probe.writes"] } },
            { strategy: "postgres", client: "pg", engine: "postgres", extra: { "cutover:database": db("postgres", "replica"), "cutover:cache": redis("replica") }, runbook: ROOM },
        ] as const;
        for (const sc of scenarios) {
            const strategy = sc.strategy;
            if (strategy === "freeze") {
                console.log("== Redis on both db hosts: old a primary, new a replica through stunnel over the mesh (old, new)");
                await provision(lab, LAB_STACKS.old, { config: { "cutover:cache": redis("primary") } });
                await provision(lab, LAB_STACKS.new, { config: { ...sc.extra, "cutover:live": "old" } });
            }
            if (strategy === "dual-primary") {
                console.log("== both databases dual-primary (old, then new)");
                await provision(lab, LAB_STACKS.old, { config: { "cutover:database": db("mariadb", "dual-primary") } });
                await provision(lab, LAB_STACKS.new, { config: { "cutover:database": db("mariadb", "dual-primary"), "cutover:live": "old" } });
            }
            if (strategy === "postgres") {
                console.log("== PostgreSQL and Redis: old primaries, new a standby and a replica over the mesh with client certificates (old, new, old, new)");
                for (const stack of [LAB_STACKS.old, LAB_STACKS.new, LAB_STACKS.old, LAB_STACKS.new]) {
                    await provision(lab, stack, { config: stack === LAB_STACKS.old ? { "cutover:database": db("postgres", "primary"), "cutover:cache": redis("primary") } : { ...sc.extra, "cutover:live": "old", "cutover:runbook": "{}" } });
                }
            }
            strategies[strategy] = {};
            inReport();
            await flipBothWays(lab, { stack: LAB_STACKS.new, label: strategy, client: sc.client, engine: sc.engine, extra: sc.extra, runbook: sc.runbook, url, rate: args.rate }, series, strategies[strategy]);
            // A failed flip ends the flips: the next ones would start from wherever its abort left the sites.
            if (!flipsOk(strategies)) break;
        }
        let flipOk = flipsOk(strategies) && Object.keys(strategies).length === scenarios.length;

        if (args.clouds) {
            const clouds = await rehearseClouds(series, args.rate);
            report.clouds = clouds;
            flipOk = flipOk && clouds.ok;
            lab = new Lab(undefined, (l) => console.log(l));
        }
        const svg = path.join(path.dirname(args.report), "rehearsal-timeline.svg");
        fs.writeFileSync(svg, timelineSvg(series));
        console.log(`   timeline: ${path.relative(process.cwd(), svg)}`);

        let engineOk = true;
        if (args.pulumi) {
            report.engine = await rehearseWithEngine(lab, args.pulumi, url, args.rate);
            engineOk = (report.engine as { ok: boolean }).ok;
        }

        report.ok = wrong.length === 0 && ran.length === 0 && missing.length === 0 && flipOk && engineOk;
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

/**
 * The freeze the rehearsal's flips allow (cutover:runbook.freezeMs; the default is 5 s): room for
 * a loaded machine, where CI runs two labs side by side (a CI run's MariaDB switch with Redis
 * beside it aborted, safely, with nothing lost, 7 s into the 5 s default). It bounds the window,
 * it does not lengthen it: the report's t0..t5 and held latencies are what the flips took.
 */
const REHEARSAL_FREEZE_MS = 8000;
const ROOM = { freezeMs: REHEARSAL_FREEZE_MS };

interface FlipScenario {
    /** The stack that owns cutover:live. */
    stack: string;
    label: string;
    client: string;
    engine: "mariadb" | "postgres";
    extra: Record<string, string>;
    runbook: Record<string, unknown>;
    url: string;
    /** The clients' writes per second. */
    rate: number;
}

/**
 * Cutover, then rollback, under load: the program runs the runbook as `pulumi up` after a
 * flip of cutover:live, clients write through the old site's edge; with Redis beside the
 * database, a job writer on the outgoing Redis meanwhile. Adds each flip to `out` as it ends
 * and to the timeline; a failed cutover is not rolled back (the site it would leave is live).
 */
async function flipBothWays(lab: Lab, sc: FlipScenario, series: Series[], out: Record<string, FlipReport>): Promise<void> {
    for (const [name, to] of [["cutover", "new"], ["rollback", "old"]] as const) {
        console.log(`== ${sc.label}: ${name}: cutover:live -> ${to} under ${sc.rate} writes/s`);
        const client = `${sc.client}${name}`;
        const from = to === "new" ? "old" : "new";
        const withRedis = "cutover:cache" in sc.extra;
        if (withRedis) await startRedisWriter(lab, `${from}-db-1`, `jobs_${client}`);
        // The load runs from 2 s before the flip until 3 s after the program finished (at most 60 s).
        const run = await flipUnderLoad(lab, { stack: sc.stack, url: sc.url, client, rate: sc.rate, seconds: 60, leadMs: 2000, tailMs: 3000, config: { ...sc.extra, "cutover:live": to, "cutover:runbook": JSON.stringify(sc.runbook) } });
        const redisWrites = withRedis ? await stopRedisWriter(lab, `${from}-db-1`, `jobs_${client}`, `${to}-db-1`) : undefined;
        const f = flipFigures(run.writes, await recordedWrites(lab, `${to}-db-1`, client, sc.engine), run.from, run.to);
        const steps = run.steps.map((r) => ({ step: r.step.replace(/^new-runbook-/, ""), host: r.host, ms: r.ms, startedAt: (r.endedAt ?? 0) - r.ms }));
        out[name] = { ...f, heldServedBy: heldServedBy(run.writes, run.audit), error: run.error, switchMs: run.to - run.from, steps: steps.map(({ step, host, ms }) => ({ step, host, ms })), audit: run.audit, redis: redisWrites };
        // The steps as they started, and the switch's t0..t5 from the audit record.
        const tMarks = ["held", "frozen", "caught-up", "promoted", "committed", "routed"].map((k, i) => ({ label: `t${i} ${k}`, at: Number(run.audit?.[k]) })).filter((m) => m.at > 0);
        const held = Number(run.audit?.held);
        const routed = Number(run.audit?.routed);
        series.push({
            title: `${sc.label} ${name}: cutover:live -> ${to}, ${sc.rate} writes/s through the old edge`,
            writes: run.writes,
            marks: [...steps.map((st) => ({ label: `${st.step} step`, at: st.startedAt })), ...tMarks].sort((a, b) => a.at - b.at),
            ...(held > 0 && routed >= held ? { window: { from: held, to: routed } } : {}),
        });
        console.log(`   ${run.error ? "FAILED" : "ok"}; ${f.writes} writes, ${f.failed} failed, ${f.lost} lost, ${f.duplicated} duplicated; unavailable ${f.unavailableMs} ms; switch step ${run.to - run.from} ms; latency inside p50 ${f.window.p50Ms} / p99 ${f.window.p99Ms} / max ${f.window.maxMs} ms; then served by ${f.servedAfter.join(", ")}`);
        console.log(`   steps: ${steps.map((st) => `${st.step} ${st.ms} ms`).join(", ")}`);
        if (run.audit) console.log(`   audit: lost transactions ${run.audit.lostTransactions}${run.audit.held ? `; t0 held -> t5 routed ${Number(run.audit.routed) - Number(run.audit.held)} ms` : ""}`);
        if (redisWrites) console.log(`   Redis job writer on ${from}-db-1: ${redisWrites.writes} writes, ${redisWrites.failed} refused (paused, fenced or read-only), ${redisWrites.lost} acknowledged but missing on ${to}-db-1`);
        // The whole message: the failed step's host, exit code and stderr are on its later lines.
        if (run.error) console.log(run.error.split("\n").map((l) => `   | ${l}`).join("\n"));
        if (!flipsOk({ [sc.label]: { [name]: out[name] } })) return;
    }
}

/** Every flip: nothing failed, lost or doubled, and the writes after it served by the incoming site. */
function flipsOk(strategies: Record<string, Record<string, FlipReport>>): boolean {
    return Object.values(strategies).every((x) => Object.entries(x).every(([name, f]) =>
        !f.error && f.failed === 0 && f.lost === 0 && f.duplicated === 0 && (f.redis?.lost ?? 0) === 0
        && f.servedAfter.length > 0 && f.servedAfter.every((s) => s.startsWith(`${name === "cutover" ? "new" : "old"} `))));
}

/**
 * The reference stacks' migration, DigitalOcean to AWS, on a fresh lab as a cloud: every host
 * created by the program and booted through cloud-init (lab/cloud.ts); both strategies, each
 * cut over and rolled back under load.
 */
async function rehearseClouds(series: Series[], rate: number): Promise<Record<string, unknown> & { ok: boolean }> {
    console.log("== DigitalOcean to AWS: a fresh lab as a cloud, every host created by the program");
    await Lab.down();
    const lab = new Lab(labPlan(CLOUD_HOSTS), (l) => console.log(l));
    await lab.up();
    const provisioning: Array<Record<string, unknown>> = [];
    for (const site of ["old", "new", "old", "new"] as const) {
        console.log(`== provisioning ${LAB_CLOUD_STACKS[site]} through the program (${site === "old" ? "droplets" : "instances"})`);
        const p = await provision(lab, LAB_CLOUD_STACKS[site]);
        provisioning.push({ stack: LAB_CLOUD_STACKS[site], seconds: seconds(p.ms), ran: p.runs.filter((r) => r.action !== "unchanged").length });
    }
    // How the program met each host (its first step started while cloud-init was still
    // booting it), as which user it logged in to each cloud's hosts, where the db droplet keeps its data.
    const boot = await cloudBoots(lab);
    for (const [name, b] of Object.entries(boot)) console.log(`   ${name} (${b.cloud}): cloud-init ${b.cloudInit}; ${b.firstStep} started ${b.firstStepStartedBeforeBootFinishedS} s before its first boot finished${b.firstStepWaited ? " and waited for it" : ", DID NOT WAIT"}`);
    const logins = await cloudLogins(lab, [LAB_CLOUD_STACKS.old, LAB_CLOUD_STACKS.new], "new-db-1");
    console.log(`   logins: ${Object.entries(logins.users).map(([k, u]) => `${k} ${u.join(", ")}`).join("; ")}; root on AWS ${logins.awsRootRefused ? "refused" : "ALLOWED"}; admin sudo ${logins.awsAdminSudo ? "passwordless" : "MISSING"}`);
    const volume = await dataVolume(lab, "old-db-1");
    console.log(`   old-db-1 data directory on ${volume.source || "the root disk"}${volume.tables ? ", tables there" : ", NO TABLES"}`);
    const again = [];
    for (const site of ["old", "new"] as const) again.push(...(await provision(lab, LAB_CLOUD_STACKS[site])).runs);
    const ran = again.filter((r) => r.action !== "unchanged").length;
    console.log(`   re-run with unchanged config: ${again.length} steps, ${ran} ran`);
    const url = `http://${lab.plan.hosts.find((h) => h.role === "edge" && h.site === "old")!.address}/`;
    const strategies: Record<string, Record<string, FlipReport>> = {};
    const parity = { parity: ["cutover_probe.writes"], ...ROOM };
    strategies.freeze = {};
    await flipBothWays(lab, { stack: LAB_CLOUD_STACKS.new, label: "DigitalOcean to AWS, freeze", client: "cloudfreeze", engine: "mariadb", extra: {}, runbook: parity, url, rate }, series, strategies.freeze);
    if (flipsOk(strategies)) {
        console.log("== DigitalOcean to AWS: both databases dual-primary (old, then new)");
        const dual = { "cutover:database": JSON.stringify({ engine: "mariadb", phase: "dual-primary" }) };
        await provision(lab, LAB_CLOUD_STACKS.old, { config: dual });
        await provision(lab, LAB_CLOUD_STACKS.new, { config: { ...dual, "cutover:live": "old" } });
        strategies["dual-primary"] = {};
        await flipBothWays(lab, { stack: LAB_CLOUD_STACKS.new, label: "DigitalOcean to AWS, dual-primary", client: "clouddual", engine: "mariadb", extra: dual, runbook: parity, url, rate }, series, strategies["dual-primary"]);
    }
    const booted = Object.values(boot).every((b) => b.cloudInit === "done" && b.firstStepWaited);
    const users = logins.users.digitalocean.join() === "root" && logins.users.aws.join() === "admin" && logins.awsRootRefused && logins.awsAdminSudo;
    await Lab.down();
    return { ok: booted && users && volume.tables && ran === 0 && flipsOk(strategies) && Object.keys(strategies).length === 2, from: "digitalocean", to: "aws", boot, logins, volume, provisioning, rerun: { steps: again.length, ran }, ratePerSecond: rate, freezeMs: REHEARSAL_FREEZE_MS, clientsVia: url, cutover: strategies };
}

/**
 * The same provisioning and MariaDB flips on a fresh lab through the real Pulumi engine: the
 * CLI, its language host and the plugins of `npm run engine:install`, a file backend.
 */
async function rehearseWithEngine(lab: Lab, pulumi: string, url: string, rate: number): Promise<Record<string, unknown>> {
    console.log("== the real Pulumi engine: a fresh lab");
    await Lab.down();
    await lab.up();
    const engine = new Engine(lab, pulumi);
    const ups = await engineSetUp(engine, LAB_STACKS, (l) => console.log(l));
    for (const u of ups) console.log(`   ${u.stack}: ${seconds(u.ms)} s, ${u.changed} resources changed`);
    const rerun: Record<string, boolean> = {};
    for (const stack of [LAB_STACKS.old, LAB_STACKS.new]) rerun[stack] = (await engine.preview(stack, ["--expect-no-changes"])).code === 0;
    console.log(`   pulumi preview --expect-no-changes: ${Object.entries(rerun).map(([s, ok]) => `${s} ${ok ? "no changes" : "CHANGES"}`).join(", ")}`);
    const flips: Record<string, Record<string, unknown>> = {};
    for (const [name, to] of [["cutover", "new"], ["rollback", "old"]] as const) {
        console.log(`== engine: ${name}: pulumi config set cutover:live ${to}; pulumi up -s ${LAB_STACKS.new}, under ${rate} writes/s`);
        const client = `engine${name}`;
        const { run, writes, from, to: ended } = await engineFlip(lab, engine, { stack: LAB_STACKS.new, to, url, client, rate });
        // The window is the whole `pulumi up` here (the engine reports no step times finer than a second).
        const f = flipFigures(writes, await recordedWrites(lab, `${to}-db-1`, client), from, ended);
        const error = run.code === 0 ? undefined : run.diagnostics.filter((d) => d.startsWith("error")).join("\n") || `exit ${run.code}`;
        flips[name] = { ...f, error, upSeconds: seconds(run.ms), steps: run.steps.filter((st) => st.op !== "same" && st.op !== "read").map((st) => ({ step: st.urn.split("::").pop(), op: st.op, seconds: st.ms / 1000 })) };
        console.log(`   ${error ? `FAILED: ${error.split("\n")[0]}` : "ok"}; pulumi up ${seconds(run.ms)} s; ${f.writes} writes, ${f.failed} failed, ${f.lost} lost, ${f.duplicated} duplicated; latency p50 ${f.window.p50Ms} / p99 ${f.window.p99Ms} / max ${f.window.maxMs} ms; then served by ${f.servedAfter.join(", ")}`);
    }
    const ok = Object.values(rerun).every(Boolean) && Object.entries(flips).every(([name, f]) => !f.error && f.failed === 0 && f.lost === 0 && f.duplicated === 0
        && (f.servedAfter as string[]).length > 0 && (f.servedAfter as string[]).every((s) => s.startsWith(`${name === "cutover" ? "new" : "old"} `)));
    return { ok, pulumi, provisioning: ups.map((u) => ({ stack: u.stack, seconds: seconds(u.ms), changed: u.changed })), rerunNoChanges: rerun, cutover: flips };
}

main().catch(async (e) => {
    console.error(e instanceof LabError ? e.message : (e?.stack ?? e));
    await Lab.down();
    process.exit(1);
});
