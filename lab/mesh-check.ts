// Reachability over the mesh, from inside lab hosts.
import { spawnSync } from "child_process";
import { Lab } from "./lab";

export interface MeshTarget {
    name: string;
    meshAddress: string;
}

/** Pings every `to` mesh address from every `from` host until all answer or `withinMs` passes; the pairs that never did. */
export async function unreachablePairs(lab: Lab, from: MeshTarget[], to: MeshTarget[], withinMs = 60_000): Promise<string[]> {
    // A missing ping would read as "every pair unreachable": say what is missing instead.
    if (spawnSync("bash", ["-c", "command -v ping"]).status !== 0) throw new Error("ping is missing on this machine (the lab hosts share its /usr): run lab/install-packages.sh");
    const deadline = Date.now() + withinMs;
    let failed: string[] = [];
    do {
        const results = await Promise.all(
            from.map(async (f) => {
                const targets = to.filter((t) => t.name !== f.name).map((t) => `${t.name}=${t.meshAddress}`);
                const r = await lab.enter(f.name, `for t in ${targets.join(" ")}; do (ping -c1 -W1 "\${t#*=}" >/dev/null 2>&1 || echo "${f.name}->\${t%%=*}") & done; wait`);
                return r.stdout.split("\n").filter(Boolean);
            }),
        );
        failed = results.flat();
        if (failed.length === 0) return [];
        await new Promise((r) => setTimeout(r, 500));
    } while (Date.now() < deadline);
    // Make a failure explain itself: what each daemon involved knows about nodes and edges.
    for (const name of [...new Set(failed.flatMap((f) => f.split("->")))].slice(0, 3)) {
        const dump = await lab.enter(name, "tincd -n cutover -kUSR2; sleep 0.5; tail -n 40 /var/log/tinc.cutover.log");
        failed.push(`--- ${name}:\n${dump.stdout}`);
    }
    return failed;
}

/** Mesh members from a stack's recorded `mesh` output. */
export function meshTargets(outputs: Record<string, unknown>): MeshTarget[] {
    const mesh = outputs.mesh as { members?: Array<{ host: string; meshAddress: string }> } | null;
    return (mesh?.members ?? []).map((m) => ({ name: m.host, meshAddress: m.meshAddress }));
}
