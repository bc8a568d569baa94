// What the replication lab tests share: waiting until both sides hold the same content,
// and finding acknowledged writes missing on the replica.
import { Lab } from "../../lab/lab";
import { LAB_STACKS, provision } from "../../lab/runtime";

/** Polls `content` on both hosts until it is equal or the time is up; returns the last reading. */
export async function waitIdentical(content: (host: string) => Promise<string>, primary: string, replica: string, withinMs: number): Promise<{ primary: string; replica: string }> {
    const deadline = Date.now() + withinMs;
    let last = { primary: "", replica: "" };
    while (Date.now() < deadline) {
        last = { primary: await content(primary), replica: await content(replica) };
        if (last.primary === last.replica) return last;
        await new Promise((res) => setTimeout(res, 250));
    }
    return last;
}

/** The writer's acknowledged sequence numbers (on `primary`) that `present` lacks. */
export async function lostOnReplica(lab: Lab, primary: string, present: string[]): Promise<string[]> {
    const acked = (await lab.enter(primary, "cat /tmp/writer-acked")).stdout.split("\n").filter(Boolean);
    const have = new Set(present);
    return acked.filter((s) => !have.has(s));
}

export async function stopWriter(lab: Lab, host: string): Promise<void> {
    await lab.enter(host, "touch /tmp/writer-stop; sleep 0.5");
}

/**
 * Cuts the link between the sites for 4 s while the writer (already started) writes, and
 * checks that the primary got ahead of the replica meanwhile; the link is always restored.
 */
export async function cutWhileWriting(lab: Lab, count: (host: string) => Promise<number>, primary: string, replica: string): Promise<void> {
    lab.cut("old", "new");
    try {
        await new Promise((r) => setTimeout(r, 4000));
        const behind = await count(replica);
        const ahead = await count(primary);
        if (!(ahead > behind)) throw new Error(`writes reached the replica through a cut link (primary ${ahead}, replica ${behind})`);
    } finally {
        lab.restore("old", "new");
    }
}

/**
 * The first deploy with a writer on the old primary from the start: old (primary), new
 * (its replica waits: old does not know new yet), old (takes in new's mesh members),
 * new (seeds and replicates).
 */
export async function replicateWhileWriting(lab: Lab, config: (phase: string) => Record<string, string>, primary: string, writer: string): Promise<void> {
    await provision(lab, LAB_STACKS.old, { config: config("primary") });
    const w = await lab.enter(primary, writer);
    if (w.code !== 0) throw new Error(`the writer did not start on ${primary}: ${w.stderr}`);
    await provision(lab, LAB_STACKS.new, { config: config("replica") });
    await provision(lab, LAB_STACKS.old, { config: config("primary") });
    await provision(lab, LAB_STACKS.new, { config: config("replica") });
}
