// The edge (HAProxy + the hold/route Lua) and the probe app: renderers directly, and the
// edge steps of the reference stacks under mocks.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { EdgePlan, edgeLua, edgeScript, haproxyConf } from "../../components/edge/render";
import { probePy } from "../../components/app/probe";
import { Evaluation, evaluateStack } from "../../tools/offline";
import { ofType, plain } from "../helpers";

const plan = {
    host: "old-edge-1",
    bind: ":80",
    live: "old",
    sites: {
        old: [{ name: "old-app-1", address: "10.250.1.30", port: 8080 }],
        new: [{ name: "new-app-1", address: "10.250.2.30", port: 8080 }],
    },
};

describe("edge renderers", () => {
    it("has a backend per site, routes by the live site and holds every method but reads", () => {
        const conf = haproxyConf(plan);
        assert.match(conf, /^backend site_old\n[\s\S]*server old-app-1 10\.250\.1\.30:8080 check/m);
        assert.match(conf, /^backend site_new\n[\s\S]*server new-app-1 10\.250\.2\.30:8080 check/m);
        assert.match(conf, /use_backend site_%\[lua\.cutover_live\]/);
        assert.match(conf, /http-request lua\.cutover_hold unless METH_GET or METH_HEAD or METH_OPTIONS/);
        assert.match(conf, /option http-buffer-request/, "held requests are buffered whole");
    });
    it("starts on the site in the live file (written once, then only by the runbook) and knows only the sites it has backends for", () => {
        const lua = edgeLua(["old", "new"]);
        assert.match(lua, /io\.open\("\/etc\/haproxy\/cutover-live", "r"\)/);
        assert.match(lua, /if saved and known\[saved\] then live = saved end/);
        assert.match(lua, /local known = \{ \["old"\] = true, \["new"\] = true \}/);
        const s = edgeScript({ ...plan, live: "new" });
        assert.match(s, /\[ -s \/etc\/haproxy\/cutover-live \] \|\| \{ echo new > \/etc\/haproxy\/cutover-live/, "the ensure-step never overwrites the runbook's choice");
        assert.match(lua, /tonumber\(arg\) <= 60000/, "a hold always has a deadline");
    });
    it("checks the config before it reloads, and reloads seamlessly (never a restart of a running edge)", () => {
        const s = edgeScript(plan);
        assert.ok(s.indexOf("haproxy -c -q -f") < s.indexOf("-sf \"$pid\""));
        assert.match(s, /systemctl reload haproxy/);
    });
    // Required in CI (CUTOVER_LAB_REQUIRED=1), where .ci/run installs haproxy.
    const noHaproxy = spawnSync("bash", ["-c", "command -v haproxy"]).status !== 0 && process.env.CUTOVER_LAB_REQUIRED !== "1" && "haproxy not installed";
    const plans: Record<string, EdgePlan> = {
        "both sites": plan,
        "no peer yet": { ...plan, sites: { old: plan.sites.old } },
        "a site without app hosts": { ...plan, live: "new", sites: { ...plan.sites, new: [] } },
        "several app hosts, a mesh admin address": { ...plan, adminAddress: "198.18.1.10", sites: { old: [1, 2, 3].map((i) => ({ name: `old-app-${i}`, address: `10.250.1.${30 + i}`, port: 8080 })), new: plan.sites.new } },
    };
    for (const [what, p] of Object.entries(plans)) {
        it(`renders a config HAProxy itself accepts (haproxy -c): ${what}`, { skip: noHaproxy }, () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-edge-"));
            fs.writeFileSync(path.join(dir, "edge.lua"), edgeLua(Object.keys(p.sites)));
            const conf = haproxyConf(p).replace(/lua-load \S+/, `lua-load ${dir}/edge.lua`).replace(/stats socket \S+/, `stats socket ${dir}/admin.sock`);
            fs.writeFileSync(path.join(dir, "haproxy.cfg"), conf);
            const r = spawnSync("haproxy", ["-c", "-f", path.join(dir, "haproxy.cfg")], { encoding: "utf8" });
            fs.rmSync(dir, { recursive: true, force: true });
            assert.equal(r.status, 0, r.stderr || r.stdout);
        });
    }
});

describe("probe app", () => {
    const probe = { site: "old", host: "old-app-1", db: { address: "198.18.1.110", port: 3306, engine: "mariadb" as const } };
    const pgProbe = { ...probe, db: { ...probe.db, port: 5432, engine: "postgres" as const } };
    it("acknowledges a write only after its row is inserted in the site's database, else 503", () => {
        const py = probePy(probe);
        assert.match(py, /SITE, HOST, PORT = "old", "old-app-1", 8080/);
        assert.match(py, /host="198\.18\.1\.110", port=3306/);
        assert.match(py, /TABLE = "cutover_probe\.writes"/);
        assert.match(py, /"INSERT INTO " \+ TABLE \+ " \(client, seq, site, host\) VALUES \(%s, %s, %s, %s\)", \(client/, "parameters, never formatted into the SQL");
        assert.match(py, /autocommit=True/, "acknowledged means committed");
        assert.match(py, /except Exception as e:\s*\n(\s*#.*\n)?\s*return self\.reply\(503/);
        assert.doesNotMatch(py, /password/i, "the password is in the options file, not the program");
    });
    it("on PostgreSQL logs in with its client certificate and verifies the server, committing each write", () => {
        const py = probePy(pgProbe);
        assert.match(py, /import psycopg2/);
        assert.match(py, /user="probe", sslmode="verify-full", sslrootcert="\/etc\/cutover-probe\/ca\.pem", sslcert="\/etc\/cutover-probe\/client\.pem", sslkey="\/etc\/cutover-probe\/client\.key"/);
        assert.match(py, /conn\.autocommit = True/);
        assert.doesNotMatch(py, /password/i);
    });
    it("is valid Python", { skip: spawnSync("bash", ["-c", "command -v python3"]).status !== 0 && "python3 not installed" }, () => {
        for (const p of [probe, pgProbe]) {
            const r = spawnSync("python3", ["-c", "import ast, sys; ast.parse(sys.stdin.read())"], { input: probePy(p), encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr);
        }
    });
});

describe("which edges the program manages", () => {
    const edgeSteps = (e: Evaluation) => ofType(e, "command:remote:Command").filter((c) => c.name.includes("-edge-") && !["hostfw", "mesh", "inventory"].some((s) => c.name.includes(s)));
    it("leaves an existing host's edge alone unless edge.manage is true", async () => {
        const [managed, leftAlone] = await Promise.all([
            evaluateStack({ stack: "lab-old", withPeer: false }),
            evaluateStack({ stack: "lab-old", withPeer: false, config: { "cutover:edge": JSON.stringify({ proxied: false }) } }),
        ]);
        assert.equal(managed.main.error, undefined, managed.main.error?.message);
        assert.deepEqual(edgeSteps(managed.main).map((c) => c.name), ["old-edge-old-edge-1"]);
        assert.deepEqual(edgeSteps(leftAlone.main).map((c) => c.name), []);
    });
});

describe("edge steps of the reference stacks", () => {
    let e: Evaluation;
    before(async () => {
        e = (await evaluateStack({ stack: "new" })).main;
        assert.equal(e.error, undefined, e.error?.message);
    });
    it("puts both sites' app hosts behind the new edge (the old ones at their mesh addresses), serving the live site", () => {
        const step = ofType(e, "command:remote:Command").find((c) => c.name === "new-edge-new-edge-1");
        assert.ok(step, "no edge step");
        const script = plain(step.inputs.create) as string;
        assert.match(script, /server old-app-1 10\.250\.1\.30:8080/);
        assert.match(script, /server new-app-1 10\.250\.2\.30:8080/);
        assert.match(script, /^local live = "old"$/m);
    });
    it("admits the edge's admin socket (level admin, no authentication) only from the two database hosts, over the mesh", () => {
        const firewall = plain(ofType(e, "command:remote:Command").find((c) => c.name === "new-hostfw-new-edge-1")!.inputs.create) as string;
        const admin = firewall.split("\n").filter((l) => l.includes("9901"));
        assert.ok(admin.length > 0, "no rule for the admin socket");
        const sources = [...new Set(admin.flatMap((l) => [...l.matchAll(/\b(\d+\.\d+\.\d+\.\d+(\/\d+)?)\b/g)].map((m) => m[1])))].sort();
        assert.deepEqual(sources, ["10.250.1.110", "10.250.2.110"]);
        const app = plain(ofType(e, "command:remote:Command").find((c) => c.name === "new-hostfw-new-app-1")!.inputs.create) as string;
        assert.doesNotMatch(app, /9901/, "only edges have an admin socket");
    });
});
