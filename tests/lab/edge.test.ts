// The edge on real HAProxy in the lab, provisioned by the program: client writes through the
// old site's edge to the probe apps; a hold keeps writes waiting instead of failing them,
// and releases them to whichever site is live then (the new one over the mesh) or, when
// nothing switches, back to the old site at the deadline.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Lab } from "../../lab/lab";
import { labSkip } from "./requirements";
import { LAB_STACKS, provision } from "../../lab/runtime";
import { edgeAdmin, flipFigures, recordedWrites, underLoad } from "../../lab/flip";

const skip = labSkip(["haproxy", "socat", "python3", "tincd"]);

const EDGE = "old-edge-1";
const URL = "http://192.0.2.10/";
const APPS = ["old-app-1", "new-app-1"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
        assert.equal(await edgeAdmin(lab, EDGE, "cutover live"), "live old hold off");
    });

    it("held writes go to the new site when it becomes live: none fails, none is lost or doubled", async () => {
        let from = 0;
        let to = 0;
        const writes = await underLoad(lab, { url: URL, client: "flip", rate: 50, seconds: 6 }, async () => {
            await sleep(2000);
            from = Date.now();
            assert.match(await edgeAdmin(lab, EDGE, "cutover hold 5000"), /hold on/);
            await sleep(1000); // where the runbook freezes, catches up and promotes
            assert.match(await edgeAdmin(lab, EDGE, "cutover live new"), /live new/);
            assert.match(await edgeAdmin(lab, EDGE, "cutover hold off"), /hold off/);
            to = Date.now();
        });
        const f = flipFigures(writes, await recordedWrites(lab, APPS, "flip"), from, to);
        assert.equal(f.writes, 300);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
        assert.ok(f.window.maxMs > 500, "no write was held");
        assert.deepEqual(f.servedAfter, ["new new-app-1"], "after the switch writes should reach new-app-1 over the mesh");
        await edgeAdmin(lab, EDGE, "cutover live old");
    });

    it("releases held writes to the old site at the deadline when nothing switches (an aborted cutover)", async () => {
        const writes = await underLoad(lab, { url: URL, client: "abort", rate: 50, seconds: 4 }, async () => {
            await sleep(1000);
            await edgeAdmin(lab, EDGE, "cutover hold 1000");
        });
        const f = flipFigures(writes, await recordedWrites(lab, APPS, "abort"), 0, Number.MAX_SAFE_INTEGER);
        assert.deepEqual({ failed: f.failed, lost: f.lost, duplicated: f.duplicated }, { failed: 0, lost: 0, duplicated: 0 });
        assert.ok(f.window.maxMs > 500, "no write was held");
        assert.ok(writes.every((w) => w.served === "old old-app-1"), "a write left the old site");
    });

    it("refuses to route to a site it does not know", async () => {
        assert.match(await edgeAdmin(lab, EDGE, "cutover live elsewhere"), /error: unknown site elsewhere/);
        assert.match(await edgeAdmin(lab, EDGE, "cutover live"), /^live old/);
    });
});
