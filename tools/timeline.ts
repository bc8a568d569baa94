// The rehearsal's timeline as SVG: acknowledged writes per second over time for each
// flip, failed writes as red ticks, and each labelled mark (runbook steps, t0..t5) as a vertical line (like
// OneSignal's t0..t5 diagram). A pure function of the load generator's records.
import { Write } from "../lab/flip";

export interface Mark {
    label: string;
    /** ms since the epoch. */
    at: number;
}

export interface Series {
    title: string;
    writes: Write[];
    marks: Mark[];
}

const WIDTH = 900;
const PANEL = 220;
const MARGIN = { left: 60, right: 20, top: 36, bottom: 36 };
const BUCKET_MS = 250;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** Acknowledged writes per second, by completion time, in buckets of 250 ms from `start`. */
export function writesPerSecond(writes: Write[], start: number, end: number): number[] {
    const buckets = new Array(Math.max(1, Math.ceil((end - start) / BUCKET_MS))).fill(0);
    for (const w of writes.filter((x) => x.status === 200)) {
        const i = Math.floor((w.sent + w.ms - start) / BUCKET_MS);
        if (i >= 0 && i < buckets.length) buckets[i] += 1000 / BUCKET_MS;
    }
    return buckets;
}

export function timelineSvg(series: Series[]): string {
    const height = series.length * (PANEL + MARGIN.top + MARGIN.bottom);
    const plotW = WIDTH - MARGIN.left - MARGIN.right;
    const panels = series.map((s, n) => {
        const top = n * (PANEL + MARGIN.top + MARGIN.bottom) + MARGIN.top;
        const times = s.writes.flatMap((w) => [w.sent, w.sent + w.ms]).concat(s.marks.map((m) => m.at));
        const start = Math.min(...times);
        const end = Math.max(...times) + BUCKET_MS;
        const rates = writesPerSecond(s.writes, start, end);
        const yMax = Math.max(10, ...rates);
        const x = (t: number) => MARGIN.left + ((t - start) / (end - start)) * plotW;
        const y = (v: number) => top + PANEL - (v / yMax) * PANEL;
        const line = rates.map((v, i) => `${x(start + (i + 0.5) * BUCKET_MS).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
        const failed = s.writes.filter((w) => w.status !== 200).map((w) => `<line class="failed" x1="${x(w.sent).toFixed(1)}" x2="${x(w.sent).toFixed(1)}" y1="${top + PANEL}" y2="${top + PANEL - 8}"/>`);
        const marks = s.marks.map((m, i) => `<line class="mark" x1="${x(m.at).toFixed(1)}" x2="${x(m.at).toFixed(1)}" y1="${top}" y2="${top + PANEL}"/><text class="mark" x="${(x(m.at) + 3).toFixed(1)}" y="${top + 12 + (i % 6) * 12}">${esc(m.label)}</text>`);
        const seconds = Math.floor((end - start) / 1000);
        const ticks = Array.from({ length: seconds + 1 }, (_, i) => `<text class="axis" x="${x(start + i * 1000).toFixed(1)}" y="${top + PANEL + 14}">${i}s</text>`);
        return `<g>
<text class="title" x="${MARGIN.left}" y="${top - 12}">${esc(s.title)}</text>
<rect class="frame" x="${MARGIN.left}" y="${top}" width="${plotW}" height="${PANEL}"/>
<text class="axis" x="4" y="${top + 10}">${Math.round(yMax)}/s</text>
<text class="axis" x="4" y="${top + PANEL}">0/s</text>
${ticks.join("\n")}
<polyline class="rate" points="${line}"/>
${failed.join("\n")}
${marks.join("\n")}
</g>`;
    });
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">
<style>
.title { font: bold 14px sans-serif; } .axis { font: 10px sans-serif; fill: #555; } .mark { stroke: #c60; stroke-dasharray: 4 3; font: 10px sans-serif; fill: #c60; }
.frame { fill: none; stroke: #999; } .rate { fill: none; stroke: #06c; stroke-width: 1.5; } .failed { stroke: #d00; stroke-width: 1; }
</style>
${panels.join("\n")}
</svg>
`;
}
