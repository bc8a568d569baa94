// npm run bench:mesh  (root, Debian; a benchmark, not a test)
// For a lab of 6 and of 12 hosts: provisions both sites through the program, then restarts
// every tincd at once and measures convergence (daemons started -> every pair reachable
// over mesh addresses), and mesh TCP throughput as a ratio of the raw link between the
// same two hosts in the same run. Prints and writes bench-mesh.json.
import * as fs from "fs";
import { MESH_ROLE_BASE } from "../components/config";
import { Lab } from "../lab/lab";
import { LAB_STACKS, provision } from "../lab/runtime";
import { LabHost, LabHostSpec, labHostEntries, labPlan } from "../lab/topology";
import { referenceConfig, stackDir } from "../tests/helpers";

function specs(perSite: number): LabHostSpec[] {
    const roles = ["edge", "app", "db", "app", "app", "app"] as const;
    return (["old", "new"] as const).flatMap((site) =>
        Array.from({ length: perSite }, (_, i) => ({ name: `${site}-${roles[i]}-${i < 3 ? 1 : i - 1}`, site, role: roles[i], octet: 10 + i })),
    );
}

function meshAddress(hosts: LabHost[], h: LabHost): string {
    const sameRole = hosts.filter((x) => x.site === h.site && x.role === h.role);
    return `198.18.${h.site === "old" ? 1 : 2}.${MESH_ROLE_BASE[h.role as keyof typeof MESH_ROLE_BASE] + sameRole.indexOf(h)}`;
}

async function allPairs(lab: Lab): Promise<boolean> {
    const hosts = lab.plan.hosts;
    const results = await Promise.all(
        hosts.map((f) => lab.enter(f.name, `for a in ${hosts.filter((t) => t !== f).map((t) => meshAddress(hosts, t)).join(" ")}; do (ping -c1 -W1 $a >/dev/null 2>&1 || echo miss) & done; wait`)),
    );
    return results.every((r) => !r.stdout.includes("miss"));
}

/** MB/s of a 256 MB TCP stream from one host to an address of another. */
async function throughput(lab: Lab, from: string, to: string, address: string): Promise<number> {
    await lab.enter(to, "ufw insert 1 allow 5001/tcp >/dev/null; setsid nohup sh -c 'nc -l 5001 >/dev/null' </dev/null >/dev/null 2>&1 & sleep 0.3");
    const r = await lab.enter(from, `start=$(date +%s.%N); dd if=/dev/zero bs=1M count=256 2>/dev/null | nc -N ${address} 5001; end=$(date +%s.%N); echo "$start $end"`);
    await lab.enter(to, "pkill -x nc; ufw delete allow 5001/tcp >/dev/null");
    const [start, end] = r.stdout.trim().split(" ").map(Number);
    return 256 / (end - start);
}

async function run(perSite: number) {
    const lab = new Lab(labPlan(specs(perSite)));
    try {
        await lab.up();
        const dir = stackDir({
            "lab-old": { ...referenceConfig("lab-old"), "cutover:hosts": labHostEntries(lab.plan, "old") },
            "lab-new": { ...referenceConfig("lab-new"), "cutover:hosts": labHostEntries(lab.plan, "new") },
        });
        for (const s of [LAB_STACKS.old, LAB_STACKS.new, LAB_STACKS.old]) await provision(lab, s, { stackDir: dir });
        // Convergence: stop every daemon, start them all at once, poll until every pair answers.
        await Promise.all(lab.plan.hosts.map((h) => lab.enter(h.name, "kill $(cut -d' ' -f1 /run/tinc.cutover.pid); while [ -e /run/tinc.cutover.pid ]; do sleep 0.05; done")));
        const started = Date.now();
        await Promise.all(lab.plan.hosts.map((h) => lab.enter(h.name, "tincd -n cutover --pidfile=/run/tinc.cutover.pid --logfile=/var/log/tinc.cutover.log </dev/null >/dev/null 2>&1")));
        let converged = false;
        while (!converged && Date.now() - started < 120_000) converged = await allPairs(lab);
        const convergenceSeconds = (Date.now() - started) / 1000;
        const a = lab.plan.hosts.find((h) => h.site === "old" && h.role === "app")!;
        const b = lab.plan.hosts.find((h) => h.site === "new" && h.role === "app")!;
        const raw = await throughput(lab, a.name, b.name, b.address);
        const mesh = await throughput(lab, a.name, b.name, meshAddress(lab.plan.hosts, b));
        return { hosts: lab.plan.hosts.length, converged, convergenceSeconds, rawMBps: Math.round(raw), meshMBps: Math.round(mesh), ratio: Math.round((mesh / raw) * 1000) / 1000 };
    } finally {
        await Lab.down();
    }
}

async function main() {
    const results = [];
    for (const perSite of [3, 6]) {
        const r = await run(perSite);
        console.log(`${r.hosts} hosts: converged ${r.converged ? `in ${r.convergenceSeconds.toFixed(2)} s` : "NOT within 120 s"}; TCP old-app -> new-app raw ${r.rawMBps} MB/s, over the mesh ${r.meshMBps} MB/s (ratio ${r.ratio})`);
        results.push(r);
    }
    fs.writeFileSync("bench-mesh.json", `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
}

main().catch(async (e) => {
    console.error(e?.message ?? e);
    await Lab.down();
    process.exit(1);
});
