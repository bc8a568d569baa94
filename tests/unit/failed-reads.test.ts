// A failed read is never a success: the reads the runbook relies on, run for real in bash
// against stand-ins that fail, must take the abort path (or report "unknown"), never go on.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import { Flip, edgesAnswer, holdAndDrain, switchWindow } from "../../components/runbook/render";

const flip: Flip = {
    from: { site: "old", host: "old-db-1", meshAddress: "198.18.1.110", port: 3306 },
    to: { site: "new", host: "new-db-1", meshAddress: "198.18.2.110", port: 3306 },
    edges: [{ name: "old-edge-1", meshAddress: "198.18.1.10" }],
    flavor: "mariadb",
    cache: false,
    settings: { strategy: "freeze", freezeMs: 3000, catchupMs: 1500, maxLagSeconds: 10, postponeFile: "/etc/cutover/postpone", postponeMinutes: 60, holdMarginMs: 2000, parity: [], attempt: 1 },
};

/** Runs `body` under the scripts' strict mode with stand-in helpers; returns exit code and output. */
function run(helpers: string, body: string): { code: number; out: string } {
    const r = spawnSync("bash", ["-c", `set -euo pipefail\nnow_ms() { date +%s%3N; }\nmark() { :; }\nabort() { echo "ABORT: $1"; exit 3; }\n${helpers}\n${body}`], { encoding: "utf8", timeout: 10_000 });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

describe("failed reads in the runbook", () => {
    it("the drain: an edge whose load cannot be read aborts (releasing the held writes), never counts as idle", () => {
        // The edge holds, then its stats cannot be read (its admin socket went away).
        const edge = `EDGES="old-edge-1=198.18.1.10"\nedge() { case "$2" in "cutover hold "*) echo "hold on" ;; *) return 1 ;; esac; }`;
        const r = run(edge, holdAndDrain(flip));
        assert.equal(r.code, 3, r.out);
        assert.match(r.out, /^ABORT: cannot read the requests in flight on the edge old-edge-1 while draining$/m);
    });
    it("the drain: a readable, idle edge ends the drain at once", () => {
        const edge = `EDGES="old-edge-1=198.18.1.10"\nedge() { case "$2" in "cutover hold "*) echo "hold on" ;; *) echo "site_old,BACKEND,0,0,0" ;; esac; }`;
        const r = run(edge, `${holdAndDrain(flip)}\necho "busy=$busy held=$held"`);
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /busy=0 held=1/);
    });
    it("after the commit, a position of the outgoing server that cannot be read is reported as unknown, never as 0 lost", () => {
        const line = switchWindow(flip).split("\n").find((l) => l.includes("lost=$(missing"))!;
        assert.ok(line, "the window counts lost transactions");
        const stand = `pos_here() { echo 0-1-100; }\npos_there() { return 1; }\nmissing() { echo 0; }`;
        const r = run(stand, `${line}\necho "lost=$lost"`);
        assert.equal(r.code, 0, r.out);
        assert.equal(r.out.trim(), "lost=unknown");
    });
    it("the precheck: an edge that answers only after a few tries (its mesh route re-forming) passes; one that never answers vetoes, naming it", () => {
        // Fails twice, then answers idle: counted in a file, since edge() runs in a subshell.
        const tries = spawnSync("mktemp", { encoding: "utf8" }).stdout.trim();
        const late = `say() { echo "$*"; }\nfail() { echo "FAIL: $*"; exit 1; }\nneeded=1\nEDGES="old-edge-1=198.18.1.10"\nedge() { n=$(( $(cat ${tries} 2>/dev/null || echo 0) + 1 )); echo $n > ${tries}; [ $n -gt 2 ] && echo "live old hold off"; }`;
        const r = run(late, `${edgesAnswer(5)}\necho "tries=$(cat ${tries})"`);
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /edge old-edge-1 does not answer on 198\.18\.1\.10:9901 yet/);
        assert.match(r.out, /tries=3/);
        const never = late.replace(/edge\(\) \{.*\}$/m, "edge() { return 1; }");
        const v = run(never, edgesAnswer(2));
        assert.equal(v.code, 1, v.out);
        assert.match(v.out, /FAIL: vetoed: cannot reach the edge old-edge-1 \(198\.18\.1\.10:9901\) over the mesh for 2 s/);
    });
});
