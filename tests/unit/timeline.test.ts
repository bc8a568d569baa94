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
    it("draws a held switch's window again zoomed: every write sent in it as a dot at its latency, failed ones red", () => {
        const all = writes();
        // t0 at 1 s, t5 at 2 s: the panel reaches from 0.75 s to 2.25 s.
        const svg = timelineSvg([{ title: "cutover", writes: all, marks: [{ label: "t0 held", at: T0 + 1000 }, { label: "t5 routed", at: T0 + 2000 }, { label: "resume step", at: T0 + 3500 }], window: { from: T0 + 1000, to: T0 + 2000 } }]);
        const inside = all.filter((w) => w.sent >= T0 + 750 && w.sent <= T0 + 2250);
        const dots = [...svg.matchAll(/<circle class="(write|failed)" cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => ({ status: m[1], cx: Number(m[2]), cy: Number(m[3]) }));
        assert.equal(dots.length, inside.length, "one dot per write sent in the window");
        assert.equal(dots.filter((d) => d.status === "failed").length, 0, "the failed writes at 3 s are outside it");
        // The first write held (sent at 1 s, answered at 2 s: 1000 ms) sits higher than the one before it (5 ms).
        const before = dots[inside.findIndex((w) => w.sent === T0 + 980)];
        const firstHeld = dots[inside.findIndex((w) => w.sent === T0 + 1000)];
        assert.ok(firstHeld.cy < before.cy - 100, `held ${firstHeld.cy}, before ${before.cy}`);
        assert.ok(firstHeld.cx > before.cx, "by when they were sent");
        assert.match(svg, />1000 ms<\/text>/, "the latency axis reaches the slowest write");
        assert.match(svg, />-200 ms<\/text>[\s\S]*>1200 ms<\/text>/, "ticks every 100 ms from t0");
        assert.equal((svg.match(/>resume step</g) ?? []).length, 1, "a mark outside the window is drawn once, in the flip's panel");
        assert.doesNotMatch(timelineSvg([{ title: "dual-primary", writes: all, marks: [] }]), /<circle/, "no window without a held switch");
    });
    it("failed writes in the window are red dots", () => {
        const all = writes().map((w) => (w.seq === 60 ? { ...w, status: 503 } : w));
        const svg = timelineSvg([{ title: "cutover", writes: all, marks: [], window: { from: T0 + 1000, to: T0 + 2000 } }]);
        assert.equal((svg.match(/<circle class="failed"/g) ?? []).length, 1);
    });
});
