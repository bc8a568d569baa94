// One build of the lab serves several lab files of a lane (tools/test-lab.ts, LAB_CHAINS):
// the baseline is the default lab stacks provisioned old, new, old, new. A file that used it
// and put it back hands it on; the next file of its chain takes it instead of building and
// provisioning a lab of its own. Handing on happens only under test-lab.ts
// (CUTOVER_LAB_HAND_ON=1), which tears the lab down when the lane ends; a file run on its
// own tears its lab down as before.
import * as fs from "fs";
import * as path from "path";
import { LAB_DIR, Lab } from "../../lab/lab";
import { LAB_STACKS, provision } from "../../lab/runtime";

const HANDED_ON = path.join(LAB_DIR, "baseline-handed-on");

/** The lab handed on by the file before, or a new one provisioned to the baseline. */
export async function baselineLab(): Promise<Lab> {
    const lab = new Lab();
    if (fs.existsSync(HANDED_ON)) {
        // Taken: a file that fails before handing it on leaves no mark, and the next builds afresh.
        fs.rmSync(HANDED_ON);
        const down = await Promise.all(lab.plan.hosts.map(async (h) => ((await lab.enter(h.name, "true", 10_000)).code === 0 ? "" : h.name)));
        if (down.every((d) => d === "")) {
            console.log("lab: the baseline handed on by the file before");
            return lab;
        }
        console.log(`lab: the lab handed on has hosts down (${down.filter(Boolean).join(", ")}): building afresh`);
    }
    await lab.up();
    for (const s of [LAB_STACKS.old, LAB_STACKS.new, LAB_STACKS.old, LAB_STACKS.new]) await provision(lab, s);
    return lab;
}

/**
 * After a file's last test: hands the baseline on when every test of the file passed, and
 * the default stacks, run once each in the order `restore` gives to put back what the tests
 * changed, then run no step at all; otherwise (or outside test-lab.ts) tears the lab down.
 */
export async function handOn(lab: Lab, allPassed: boolean, restore: string[] = [LAB_STACKS.old, LAB_STACKS.new]): Promise<void> {
    if (process.env.CUTOVER_LAB_HAND_ON === "1" && allPassed) {
        try {
            for (const s of restore) await provision(lab, s);
            const ran = [];
            for (const s of [LAB_STACKS.old, LAB_STACKS.new]) ran.push(...(await provision(lab, s)).runs.filter((r) => r.action !== "unchanged"));
            if (ran.length === 0) {
                fs.writeFileSync(HANDED_ON, `${new Date().toISOString()}\n`);
                console.log("lab: baseline handed on");
                return;
            }
            console.log(`lab: not handed on: the default stacks still ran ${ran.map((r) => `${r.step} on ${r.host}`).join(", ")}`);
        } catch (e) {
            console.log(`lab: not handed on: ${(e as Error).message}`);
        }
    }
    await Lab.down();
}

/** Whether a test passed, for an afterEach hook: the context's `passed` (Node 22 and later; the pinned @types/node lags). */
export function testPassed(t: object): boolean {
    return (t as { passed?: boolean }).passed === true;
}
