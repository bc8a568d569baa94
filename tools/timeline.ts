// The rehearsal's timeline as SVG: acknowledged writes per second over time for each
// flip, failed writes as red ticks, and each labelled mark (runbook steps, t0..t5) as a vertical line (like
// OneSignal's t0..t5 diagram). A held switch's window, a few hundred ms in a panel of a minute,
// is drawn again zoomed: each write sent in it as a dot at its latency, the way a latency blip
// is read. A pure function of the load generator's records.
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
    /** A held switch's t0 (held) and t5 (routed), ms since the epoch: drawn again zoomed. */
    window?: { from: number; to: number };
}

const WIDTH = 900;
const PANEL = 220;
const MARGIN = { left: 60, right: 20, top: 36, bottom: 36 };
const BUCKET_MS = 250;
/** The zoomed window's height, and how far it reaches before t0 and after t5. */
const ZOOM = 140;
const ZOOM_PAD_MS = 250;

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

const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;

function markLines(marks: Mark[], x: (t: number) => number, top: number, height: number): string[] {
    return marks.map((m, i) => `<line class="mark" x1="${x(m.at).toFixed(1)}" x2="${x(m.at).toFixed(1)}" y1="${top}" y2="${top + height}"/><text class="mark" x="${(x(m.at) + 3).toFixed(1)}" y="${top + 12 + (i % 6) * 12}">${esc(m.label)}</text>`);
}

/** The window from t0 - 250 ms to t5 + 250 ms: each write sent in it as a dot at its latency (failed ones red), ticks every 100 ms from t0. */
function windowPanel(s: Series, w: { from: number; to: number }, top: number): string {
    const start = w.from - ZOOM_PAD_MS;
    const end = w.to + ZOOM_PAD_MS;
    const inside = s.writes.filter((x) => x.sent >= start && x.sent <= end);
    const yMax = Math.max(50, ...inside.map((x) => x.ms));
    const x = (t: number) => MARGIN.left + ((t - start) / (end - start)) * PLOT_W;
    const y = (ms: number) => top + ZOOM - (ms / yMax) * ZOOM;
    const dots = inside.map((d) => `<circle class="${d.status === 200 ? "write" : "failed"}" cx="${x(d.sent).toFixed(1)}" cy="${y(d.ms).toFixed(1)}" r="2"/>`);
    const ticks: string[] = [];
    for (let ms = Math.ceil(-ZOOM_PAD_MS / 100) * 100; w.from + ms <= end; ms += 100) ticks.push(`<text class="axis" x="${x(w.from + ms).toFixed(1)}" y="${top + ZOOM + 14}">${ms} ms</text>`);
    return `<g>
<text class="title" x="${MARGIN.left}" y="${top - 8}">the window zoomed: each write by when it was sent (ms from t0) and how long it took</text>
<rect class="frame" x="${MARGIN.left}" y="${top}" width="${PLOT_W}" height="${ZOOM}"/>
<text class="axis" x="4" y="${top + 10}">${Math.round(yMax)} ms</text>
<text class="axis" x="4" y="${top + ZOOM}">0 ms</text>
${ticks.join("\n")}
${dots.join("\n")}
${markLines(s.marks.filter((m) => m.at >= start && m.at <= end), x, top, ZOOM).join("\n")}
</g>`;
}

export function timelineSvg(series: Series[]): string {
    const heightOf = (s: Series) => PANEL + MARGIN.top + MARGIN.bottom + (s.window ? ZOOM + MARGIN.top + MARGIN.bottom : 0);
    const height = series.reduce((sum, s) => sum + heightOf(s), 0);
    const panels = series.map((s, n) => {
        const top = series.slice(0, n).reduce((sum, p) => sum + heightOf(p), 0) + MARGIN.top;
        const times = s.writes.flatMap((w) => [w.sent, w.sent + w.ms]).concat(s.marks.map((m) => m.at));
        const start = Math.min(...times);
        const end = Math.max(...times) + BUCKET_MS;
        const rates = writesPerSecond(s.writes, start, end);
        const yMax = Math.max(10, ...rates);
        const x = (t: number) => MARGIN.left + ((t - start) / (end - start)) * PLOT_W;
        const y = (v: number) => top + PANEL - (v / yMax) * PANEL;
        const line = rates.map((v, i) => `${x(start + (i + 0.5) * BUCKET_MS).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
        const failed = s.writes.filter((w) => w.status !== 200).map((w) => `<line class="failed" x1="${x(w.sent).toFixed(1)}" x2="${x(w.sent).toFixed(1)}" y1="${top + PANEL}" y2="${top + PANEL - 8}"/>`);
        const marks = markLines(s.marks, x, top, PANEL);
        const seconds = Math.floor((end - start) / 1000);
        const ticks = Array.from({ length: seconds + 1 }, (_, i) => `<text class="axis" x="${x(start + i * 1000).toFixed(1)}" y="${top + PANEL + 14}">${i}s</text>`);
        return `<g>
<text class="title" x="${MARGIN.left}" y="${top - 12}">${esc(s.title)}</text>
<rect class="frame" x="${MARGIN.left}" y="${top}" width="${PLOT_W}" height="${PANEL}"/>
<text class="axis" x="4" y="${top + 10}">${Math.round(yMax)}/s</text>
<text class="axis" x="4" y="${top + PANEL}">0/s</text>
${ticks.join("\n")}
<polyline class="rate" points="${line}"/>
${failed.join("\n")}
${marks.join("\n")}
</g>${s.window ? `\n${windowPanel(s, s.window, top + PANEL + MARGIN.bottom + MARGIN.top)}` : ""}`;
    });
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">
<style>
.title { font: bold 14px sans-serif; } .axis { font: 10px sans-serif; fill: #555; } .mark { stroke: #c60; stroke-dasharray: 4 3; font: 10px sans-serif; fill: #c60; }
.frame { fill: none; stroke: #999; } .rate { fill: none; stroke: #06c; stroke-width: 1.5; } .failed { stroke: #d00; stroke-width: 1; fill: #d00; }
circle.write { fill: #06c; fill-opacity: 0.6; }
</style>
${panels.join("\n")}
</svg>
`;
}
