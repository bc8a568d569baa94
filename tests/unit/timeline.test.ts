// The rehearsal timeline renderer.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { timelineSvg, writesPerSecond } from "../../tools/timeline";
import { Write } from "../../lab/flip";

const T0 = 1_700_000_000_000;
/** 50 writes/s for 4 s; those sent in [1 s, 2 s) held until 2 s; two failed at 3 s. */
function writes(): Write[] {
    return Array.from({ length: 200 }, (_, i) => {
        const sent = T0 + i * 20;
        const held = sent >= T0 + 1000 && sent < T0 + 2000;
        const failed = i === 150 || i === 151;
        return { seq: i + 1, sent, ms: held ? T0 + 2000 - sent : 5, status: failed ? 503 : 200, served: held ? "new new-app-1" : "old old-app-1" };
    });
}

describe("rehearsal timeline", () => {
    it("counts acknowledged writes per second by completion: none while held, the burst at release", () => {
        const rates = writesPerSecond(writes(), T0, T0 + 4000);
        assert.equal(rates.length, 16);
        assert.ok(Math.abs(rates[1] - 50) <= 4, `about 50/s before the hold (12 or 13 writes per 250 ms bucket), got ${rates[1]}`);
        assert.deepEqual(rates.slice(4, 8), [0, 0, 0, 0], "no write completes while held");
        assert.ok(rates[8] >= 200, "the held writes complete together at release");
        const total = rates.reduce((a, b) => a + b, 0) / 4;
        assert.equal(total, 198, "every acknowledged write is counted once");
    });
    it("draws a panel per flip with its steps marked and each failed write as a tick", () => {
        const svg = timelineSvg([
            { title: "cutover", writes: writes(), marks: [{ label: "t0 hold writes", at: T0 + 1000 }, { label: "t1 route to new", at: T0 + 1900 }, { label: "t2 release", at: T0 + 2000 }] },
            { title: "rollback <old>", writes: writes(), marks: [] },
        ]);
        assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
        assert.equal((svg.match(/<polyline class="rate"/g) ?? []).length, 2);
        assert.match(svg, /t0 hold writes/);
        assert.match(svg, /t2 release/);
        assert.equal((svg.match(/<line class="failed"/g) ?? []).length, 4, "two failed writes per panel");
        assert.match(svg, /rollback &lt;old&gt;/, "titles are escaped");
    });
});
