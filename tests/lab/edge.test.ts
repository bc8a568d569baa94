// The edge on real HAProxy in the lab, provisioned by the program: client writes through the
// old site's edge to the probe apps; a hold keeps writes waiting instead of failing them,
// and releases them to whichever site is live then (the new one over the mesh) or, when
// nothing switches, back to the old site at the deadline.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as path from "path";
import { Lab, checkMachine } from "../../lab/lab";
import { LAB_STACKS, provision } from "../../lab/runtime";
import { EDGE_SOCKET } from "../../components/edge/render";

const missing = [...checkMachine(), ...(spawnSync("bash", ["-c", "command -v haproxy && command -v socat && command -v python3 && command -v tincd"]).status === 0 ? [] : ["haproxy, socat, python3 or tinc missing: run lab/install-packages.sh"])];
const skip = missing.join("; ") || false;
if (skip && process.env.CUTOVER_LAB_REQUIRED === "1") throw new Error(`lab tests are required here but cannot run: ${skip}`);

const EDGE = "old-edge-1";
const EDGE_ADDRESS = "192.0.2.10";
const LOADGEN = path.resolve(__dirname, "../../lab/loadgen.py");

interface Write {
    seq: number;
    sent: number;
    ms: number;
    status: number;
    served: string;
}

async function admin(lab: Lab, command: string): Promise<string> {
    const r = await lab.enter(EDGE, `echo "${command}" | socat -t 2 - UNIX-CONNECT:${EDGE_SOCKET}`);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
}

/** Runs the load generator from the client namespace while `during` acts; returns every write. */
async function load(lab: Lab, client: string, seconds: number, during: () => Promise<void>): Promise<Write[]> {
    const out = `/tmp/cutover-loadgen-${client}.jsonl`;
    const run = lab.client(`python3 ${LOADGEN} --url http://${EDGE_ADDRESS}/ --rate 50 --seconds ${seconds} --client ${client} --out ${out}`, (seconds + 40) * 1000);
    await during();
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const text = (await lab.client(`cat ${out}`)).stdout;
    return text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Write);
}

/** Every write the app hosts recorded for a client: "seq site host". */
async function recorded(lab: Lab, client: string): Promise<string[]> {
    const hosts = ["old-app-1", "new-app-1"];
    const rows = await Promise.all(hosts.map((h) => lab.enter(h, `grep "^${client} " /var/lib/cutover-probe/writes 2>/dev/null || true`)));
    return rows.flatMap((r) => r.stdout.split("\n").filter(Boolean));
}

describe("the edge holds writes and releases them to the live site", { skip, timeout: 900_000 }, () => {
    let lab: Lab;
    before(async () => {
        lab = new Lab();
        await lab.up();
        for (const s of [LAB_STACKS.old, LAB_STACKS.new, LAB_STACKS.old, LAB_STACKS.new]) await provision(lab, s);
    });
    after(async () => {
        await Lab.down();
    });

    it("serves the live site after provisioning", async () => {
        assert.match(await admin(lab, "cutover live"), /^live old hold off$/);
    });

    it("held writes go to the new site when it becomes live: none fails, none is lost or doubled", async () => {
        const writes = await load(lab, "flip", 6, async () => {
            await new Promise((r) => setTimeout(r, 2000));
            assert.match(await admin(lab, "cutover hold 5000"), /hold on/);
            await new Promise((r) => setTimeout(r, 1000)); // the runbook's freeze, catch-up and promotion
            assert.match(await admin(lab, "cutover live new"), /live new/);
            assert.match(await admin(lab, "cutover hold off"), /hold off/);
        });
        assert.equal(writes.length, 300);
        assert.deepEqual(writes.filter((w) => w.status !== 200).map((w) => `${w.seq}: ${w.status}`), [], "writes failed");
        const rows = await recorded(lab, "flip");
        const seqs = rows.map((r) => Number(r.split(" ")[1]));
        assert.equal(new Set(seqs).size, seqs.length, "a write was recorded twice");
        assert.deepEqual(writes.map((w) => w.seq).filter((s) => !seqs.includes(s)), [], "acknowledged writes are missing");
        const held = writes.filter((w) => w.ms > 500);
        assert.ok(held.length > 0, "no write was held");
        assert.ok(held.every((w) => w.served.startsWith("new ")), "a held write was released to the old site");
        const last = writes.slice(-10);
        assert.ok(last.every((w) => w.served === "new new-app-1"), `after the switch writes should reach new-app-1 over the mesh: ${JSON.stringify(last.map((w) => w.served))}`);
        await admin(lab, "cutover live old");
    });

    it("releases held writes to the old site at the deadline when nothing switches (an aborted cutover)", async () => {
        const writes = await load(lab, "abort", 4, async () => {
            await new Promise((r) => setTimeout(r, 1000));
            await admin(lab, "cutover hold 1000");
        });
        assert.deepEqual(writes.filter((w) => w.status !== 200).map((w) => `${w.seq}: ${w.status}`), []);
        assert.ok(writes.some((w) => w.ms > 500), "no write was held");
        assert.ok(writes.every((w) => w.served === "old old-app-1"), "a write left the old site");
    });

    it("refuses to route to a site it does not know", async () => {
        assert.match(await admin(lab, "cutover live elsewhere"), /error: unknown site elsewhere/);
        assert.match(await admin(lab, "cutover live"), /^live old/);
    });
});
