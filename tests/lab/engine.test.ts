// The real Pulumi engine runs the program against the lab's hosts: `pulumi stack init`,
// `pulumi config set`, `pulumi up` of both stacks through a real StackReference, a second
// up that changes nothing, the policy pack under `pulumi preview --policy-pack`, and the
// cutover (`pulumi config set cutover:live new`, `pulumi up`) under the rehearsal's load,
// and the decommission (new detached, `pulumi destroy` of old) with the new site serving.
// Needs `npm run engine:install` (CI runs it; CUTOVER_ENGINE_REQUIRED=1 makes a missing
// engine a failure instead of a skip).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { Lab } from "../../lab/lab";
import { labSkip } from "./requirements";
import { LAB_STACKS } from "../../lab/runtime";
import { Engine, EngineRun, engineFlip, installedEngine } from "../../lab/engine";
import { edgeAdmin, flipFigures, recordedWrites, underLoad } from "../../lab/flip";
import { evaluateStack } from "../../tools/offline";
import { readStackFile } from "../../tools/offline/stackfile";
import { POLICY_PACK_DIR, runPolicies } from "../../tools/offline/analyzer";
import { PROJECT } from "../../tools/offline/evaluate";

const pulumi = installedEngine();
if (!pulumi && process.env.CUTOVER_ENGINE_REQUIRED === "1") throw new Error("the engine is required here but not installed: run npm run engine:install");
const skip = labSkip(["haproxy", "socat", "python3", "tincd", "mariadbd"]) || (!pulumi && "the engine is not installed (npm run engine:install)");

const ROOT = path.resolve(__dirname, "../..");
const URL = "http://192.0.2.10/";
const NEW_URL = "http://198.51.100.10/";
const EDGES = ["old-edge-1", "new-edge-1"];
const DB = { old: "old-db-1", new: "new-db-1" } as const;

function readStack(stack: string): Record<string, string> {
    return readStackFile(ROOT, stack).config;
}

function changed(run: EngineRun): string[] {
    return run.steps.filter((s) => s.op !== "same" && s.op !== "read").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
}

function must(run: EngineRun, what: string): EngineRun {
    assert.equal(run.code, 0, `${what} failed (exit ${run.code}):\n${run.diagnostics.join("\n").slice(-6000)}\n${run.stderr.slice(-3000)}`);
    return run;
}

describe("the real Pulumi engine on the lab", { skip, timeout: 1_800_000 }, () => {
    let lab: Lab;
    let engine: Engine;
    const timings: Record<string, number[]> = {};
    before(async () => {
        lab = new Lab();
        await lab.up();
        engine = new Engine(lab, pulumi!);
    });
    after(async () => {
        console.log(`engine figures: ${JSON.stringify(timings)}`);
        await Lab.down();
    });

    it("refuses a peer stack that does not exist yet, naming cutover:peer and what to do; nothing is created", async () => {
        await engine.init(LAB_STACKS.old);
        await engine.configure(LAB_STACKS.old);
        const r = await engine.up(LAB_STACKS.old);
        assert.notEqual(r.code, 0);
        const said = r.diagnostics.join("\n") + r.stderr;
        assert.match(said, /cutover:peer: "organization\/cutover\/lab-new" is not a stack in this backend: create both stacks \(pulumi stack init\)/);
        assert.doesNotMatch(said, /missing configuration value/);
        assert.deepEqual(changed(r).filter((s) => s !== "create cutover-lab-old"), [], "resources besides the stack were created");
    });

    it("pulumi up of lab-old, lab-new, lab-old, lab-new sets both sites up through a real StackReference", async () => {
        await engine.init(LAB_STACKS.new);
        await engine.configure(LAB_STACKS.new);
        for (const stack of [LAB_STACKS.old, LAB_STACKS.new, LAB_STACKS.old, LAB_STACKS.new]) {
            const r = must(await engine.up(stack), `pulumi up -s ${stack}`);
            (timings[`up ${stack}`] ??= []).push(r.ms);
        }
        for (const e of EDGES) assert.equal(await edgeAdmin(lab, e, "cutover live"), "live old hold off");
        const peer = (await engine.outputs(LAB_STACKS.new)).peer as { site?: string } | null;
        assert.equal(peer?.site, "old", "lab-new does not see lab-old's outputs");
    });

    it("a second pulumi up changes nothing (pulumi preview --expect-no-changes)", async () => {
        for (const stack of [LAB_STACKS.old, LAB_STACKS.new]) {
            const r = await engine.preview(stack, ["--expect-no-changes", "--diff"]);
            assert.equal(r.code, 0, `pulumi preview -s ${stack} expects changes:\n${r.stdout.slice(-6000)}`);
        }
    });

    it("keeps secrets encrypted in the state: no private key or password in plain text", async () => {
        for (const stack of [LAB_STACKS.old, LAB_STACKS.new]) {
            const state = await engine.exported(stack);
            assert.doesNotMatch(state, /BEGIN (RSA |OPENSSH |EC )?PRIVATE KEY/, `${stack}: a private key in plain text in the state`);
            const key = fs.readFileSync(lab.keyPath, "utf8").split("\n")[1];
            assert.ok(!state.includes(key), `${stack}: the operator's key in plain text in the state`);
        }
    });

    it("pulumi preview --policy-pack gives the verdicts of npm run policy (a record with a long TTL during the migration)", async () => {
        // Offline: the stack as `npm run policy` evaluates it, with the same change.
        const ttl = JSON.stringify({ ...JSON.parse(readStack(LAB_STACKS.new)["cutover:dns"]), ttl: 3600 });
        const { main, stackFile } = await evaluateStack({ stack: LAB_STACKS.new, config: { "cutover:dns": ttl }, preview: true, peerOutputs: await engine.outputs(LAB_STACKS.old) });
        assert.equal(main.error, undefined);
        const offline = await runPolicies(main.registrations, { packDir: POLICY_PACK_DIR, project: PROJECT, stack: LAB_STACKS.new, config: stackFile.config, preview: true });
        const expected = offline.diagnostics.map((d) => `${d.level} ${d.policy} ${d.urn.split("::").pop()}`).sort();
        assert.ok(expected.some((v) => v.startsWith("mandatory dns-proxied-or-short-ttl")), `the offline run found no TTL violation: ${expected.join(", ")}`);

        await engine.setConfigPath(LAB_STACKS.new, "cutover:dns.ttl", "3600");
        const r = await engine.preview(LAB_STACKS.new, ["--policy-pack", "policies"]);
        await engine.removeConfigPath(LAB_STACKS.new, "cutover:dns.ttl");
        assert.notEqual(r.code, 0, "a mandatory violation must fail the preview");
        const real = [...r.stdout.matchAll(/- \[(mandatory|advisory)\]\s+(\S+)\s+\((\S+): (\S+)\)/g)].map((m) => `${m[1]} ${m[2]} ${m[4]}`).sort();
        assert.deepEqual(real, expected, r.stdout.slice(-4000));
        // The same pack with the stack as it is: no violation.
        const clean = await engine.preview(LAB_STACKS.new, ["--policy-pack", "policies"]);
        assert.equal(clean.code, 0, clean.stdout.slice(-4000));
    });

    it("pulumi config set cutover:live new, then pulumi up: the runbook cuts over under load, none failed, none lost; and back", async () => {
        for (const [live, liveDb] of [["new", DB.new], ["old", DB.old]] as const) {
            const client = `engine${live}`; // the probe app takes letters and digits
            const { run, writes, from, to } = await engineFlip(lab, engine, { stack: LAB_STACKS.new, to: live, url: URL, client, rate: 50 });
            (timings[`flip to ${live}`] ??= []).push(run.ms);
            must(run, `the flip to ${live}`);
            const f = flipFigures(writes, await recordedWrites(lab, liveDb, client), from, to);
            (timings[`flip to ${live}: writes/failed/lost/max held ms`] ??= []).push(f.writes, f.failed, f.lost, f.window.maxMs);
            assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 }, `first failed write: ${JSON.stringify(writes.find((w) => w.status !== 200))}`);
            for (const e of EDGES) assert.equal(await edgeAdmin(lab, e, "cutover live"), `live ${live} hold off`);
            assert.deepEqual(f.servedAfter, [`${live} ${live}-app-1`], "the writes after the pulumi up were not served by the live site");
            assert.ok(changed(run).some((s) => s.includes("runbook-switch")), `no switch ran: ${changed(run).join(", ")}`);
        }
    });

    it("decommission: cutover to new, lab-new detached from its peer, pulumi destroy of lab-old; the new site serves throughout", async () => {
        must((await engineFlip(lab, engine, { stack: LAB_STACKS.new, to: "new", url: URL, client: "enginefinal", rate: 50 })).run, "the flip to new");
        await engine.removeConfig(LAB_STACKS.new, "cutover:peer");
        await engine.setConfigPath(LAB_STACKS.new, "cutover:database.phase", "detached");
        let detach: EngineRun | undefined;
        let destroy: EngineRun | undefined;
        let from = 0;
        let to = 0;
        // The clients now come through the new site's edge (the public names point at it).
        const writes = await underLoad(lab, { url: NEW_URL, client: "enginedecommission", rate: 50, seconds: 240, tailMs: 3000 }, async () => {
            await new Promise((r) => setTimeout(r, 2000));
            from = Date.now();
            detach = await engine.up(LAB_STACKS.new);
            if (detach.code !== 0) return;
            // Stateful resources are protected; a decommission unprotects them deliberately.
            const unprotect = await engine.run(["state", "unprotect", "--all", "--yes", "-s", LAB_STACKS.old]);
            assert.equal(unprotect.code, 0, unprotect.stdout + unprotect.stderr);
            destroy = await engine.destroy(LAB_STACKS.old);
            to = Date.now();
        });
        must(detach!, "pulumi up -s lab-new (detached)");
        must(destroy!, "pulumi destroy -s lab-old");
        (timings["detach lab-new, destroy lab-old"] ??= []).push(detach!.ms, destroy!.ms);
        const f = flipFigures(writes, await recordedWrites(lab, DB.new, "enginedecommission"), from, to);
        (timings["decommission: writes/failed/lost"] ??= []).push(f.writes, f.failed, f.lost);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 }, `first failed write: ${JSON.stringify(writes.find((w) => w.status !== 200))}`);
        assert.deepEqual(f.servedAfter, ["new new-app-1"]);
        assert.ok(destroy!.steps.some((s) => s.op === "delete"), "the destroy deleted nothing");
        // The public names still point at the new site's origin (Cloudflare's mock records).
        const records = Object.values(JSON.parse(fs.readFileSync(engine.cloudflare, "utf8"))) as Array<{ name: string; content: string }>;
        const publicNames = records.filter((r) => r.name === "lab.example.com" || r.name.startsWith("www."));
        assert.ok(publicNames.length >= 2 && publicNames.every((r) => r.content.startsWith("new.")), JSON.stringify(records));
        // The new site stands alone: writable, and its next pulumi up changes nothing.
        const ro = await lab.enter(DB.new, 'mariadb --batch --skip-column-names -e "SELECT @@read_only"');
        assert.equal(ro.stdout.trim(), "0");
        const again = await engine.preview(LAB_STACKS.new, ["--expect-no-changes"]);
        assert.equal(again.code, 0, again.stdout.slice(-4000));
    });
});
