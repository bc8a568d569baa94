// The case studies (examples/*): every stack plans and passes the policy pack as users run
// them, and decommissioning (phase detached) leaves the new site needing nothing of the old.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Evaluation, evaluateStack } from "../../tools/offline";
import { POLICY_PACK_DIR, runPolicies } from "../../tools/offline/analyzer";
import { PROJECT } from "../../tools/offline/evaluate";
import { readStackFile } from "../../tools/offline/stackfile";
import { ROOT, ofType, plain } from "../helpers";

const EXAMPLES = path.join(ROOT, "examples");

function run(tool: "plan" | "policy", ...args: string[]) {
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, `tools/${tool}.ts`), ...args], { cwd: ROOT, encoding: "utf8", timeout: 240_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
}

const examples = fs.readdirSync(EXAMPLES).filter((d) => fs.existsSync(path.join(EXAMPLES, d, "Pulumi.new.yaml"))).sort();

describe("examples: each case study's stacks plan and pass policy", () => {
    it("has the three case studies, each a pair of stacks and a README", () => {
        assert.deepEqual(examples, ["adido", "ghost", "onesignal"]);
        for (const e of examples) {
            for (const f of ["Pulumi.old.yaml", "Pulumi.new.yaml", "README.md"]) assert.ok(fs.existsSync(path.join(EXAMPLES, e, f)), `examples/${e}/${f} is missing`);
        }
    });

    // In process, as the CLIs do it (tools/offline): evaluating new evaluates old as its peer
    // first; each stack then goes through the policy pack over the Analyzer protocol.
    for (const example of examples) {
        it(`${example}: both stacks plan without error and pass every mandatory policy`, async () => {
            const dir = path.join(EXAMPLES, example);
            const r = await evaluateStack({ stack: "new", stackDir: dir });
            const stacks: Array<[string, Evaluation | undefined, Record<string, string>]> = [
                ["new", r.main, r.stackFile.config],
                ["old", r.peer, readStackFile(dir, "old").config],
            ];
            for (const [stack, e, config] of stacks) {
                assert.ok(e, `${example}/${stack} was not evaluated`);
                assert.equal(e.error, undefined, `${example}/${stack}: ${e.error?.message}`);
                assert.ok(e.registrations.length > 20, `${example}/${stack}: only ${e.registrations.length} resources`);
                const run = await runPolicies(e.registrations, { packDir: POLICY_PACK_DIR, project: PROJECT, stack, config, preview: false });
                const mandatory = run.diagnostics.filter((d) => d.level === "mandatory");
                assert.deepEqual(mandatory.map((d) => `${d.policy}: ${d.message}`), [], `${example}/${stack}`);
            }
        });
    }

    it("the CLIs take an example's folder: npm run plan -- --live and npm run policy on onesignal", () => {
        const dir = path.join(EXAMPLES, "onesignal");
        const p = run("plan", "--stack", "new", "--dir", dir, "--live", "new");
        assert.equal(p.code, 0, p.out.slice(-3000) + p.err);
        assert.match(p.out, /✅ cutover@v0\.1\.0/);
        const section = p.out.slice(p.out.indexOf("If cutover:live were"));
        for (const step of ["precheck", "freeze", "switch", "resume"]) assert.match(section, new RegExp(`~ command:remote:Command  new-runbook-${step}\\n`));
        const q = run("policy", "--stack", "old", "--dir", dir);
        assert.equal(q.code, 0, q.out.slice(-3000) + q.err);
        assert.match(q.out, /0 mandatory, \d+ advisory violations/);
    });
});

describe("decommission: the new site detached needs nothing of the old one", () => {
    it("ghost: with phase detached and no peer, no resource of the new stack reads or names anything of the old site", async () => {
        const dir = path.join(EXAMPLES, "ghost");
        const old = (await evaluateStack({ stack: "old", stackDir: dir, withPeer: false })).main;
        assert.equal(old.error, undefined, old.error?.message);
        // What the old stack gives away: its host names, addresses and mesh addresses.
        const oldHosts = plain(old.outputs.hosts) as Array<{ name: string; publicAddress: string; privateAddress: string }>;
        const oldMesh = (plain(old.outputs.mesh) as { members: Array<{ meshAddress: string; node: string }> }).members;
        const oldValues = [...oldHosts.flatMap((h) => [h.name, h.publicAddress, h.privateAddress]), ...oldMesh.flatMap((m) => [m.meshAddress, m.node])];
        assert.ok(oldValues.length >= 12);

        const before = (await evaluateStack({ stack: "new", stackDir: dir })).main;
        assert.equal(before.error, undefined, before.error?.message);
        const names = (e: typeof before) => JSON.stringify(e.registrations.map((r) => r.inputs));
        assert.ok(oldValues.some((v) => names(before).includes(v)), "the migrating new site should reference the old one (the test could not fail otherwise)");

        const detached = await evaluateStack({
            stack: "new",
            stackDir: dir,
            config: { "cutover:peer": null, "cutover:live": "new", "cutover:database": JSON.stringify({ engine: "mysql", phase: "detached" }) },
        });
        const e = detached.main;
        assert.equal(e.error, undefined, e.error?.message);
        assert.equal(detached.peer, undefined);
        assert.deepEqual(ofType(e, "pulumi:pulumi:StackReference"), [], "a detached stack still reads the old stack");
        const inputs = names(e);
        for (const v of oldValues) assert.ok(!inputs.includes(v), `a resource of the detached new stack still names ${v} of the old site`);
        // The steps that take the ties away: replication account dropped, the old stack's key removed.
        const db = ofType(e, "command:remote:Command").find((c) => c.name === "new-db-new-db-1");
        assert.ok(db, "no database step");
        assert.match(plain(db.inputs.create) as string, /phase=detached|detached/);
        const authorize = ofType(e, "command:remote:Command").find((c) => c.name === "new-authorize-peer-new-db-1");
        assert.ok(authorize, "no step removes the old stack's runbook key");
        assert.match(plain(authorize.inputs.create) as string, /wanted=''/);
        assert.equal((plain(e.outputs.dns) as { live: string }).live, "new");
    });
});
