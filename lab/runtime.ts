// Provisions a lab site through the program: index.ts under the SDK's mock runtime with
// the lab stack config, every command resource executed for real on the lab hosts.
// Outputs of each run are recorded, and served to the other site's StackReference the
// way the Pulumi service serves a stack's last outputs.
import * as fs from "fs";
import * as path from "path";
import { Evaluation, evaluateStack } from "../tools/offline";
import { LabExecution, StepRun, readRuns } from "./executor";
import { LAB_DIR, Lab, LabError } from "./lab";

export const LAB_STACKS = { old: "lab-old", new: "lab-new" } as const;

/** The lab stacks without the probe app and the flip: for a PostgreSQL database, which the runbook does not switch. */
export const WITHOUT_FLIP: Record<string, null> = { "cutover:probe": null, "cutover:live": null, "cutover:runbook": null, "cutover:dns": null };

export interface Provisioned {
    stack: string;
    evaluation: Evaluation;
    /** The steps of this run, in the order they finished. */
    runs: StepRun[];
    ms: number;
}

function outputsFile(stack: string): string {
    return path.join(LAB_DIR, `outputs-${stack}.json`);
}

export interface ProvisionOptions {
    /** Folder of the Pulumi.<stack>.yaml files (default: the project). */
    stackDir?: string;
    /** Replaces config values (e.g. a flipped `cutover:live`); null removes a key. */
    config?: Record<string, string | null>;
}

/** Runs the program for one lab stack; throws LabError with the failed step's host, exit code and stderr. */
export async function provision(lab: Lab, stack: string, opts: ProvisionOptions = {}): Promise<Provisioned> {
    const started = Date.now();
    const before = readRuns(LAB_DIR).length;
    const privateKey = fs.readFileSync(lab.keyPath, "utf8");
    const hostNames = Object.fromEntries(lab.plan.hosts.map((h) => [h.address, h.name]));
    const cloud = Object.fromEntries(lab.plan.hosts.filter((h) => h.cloud).map((h) => [h.name, { kind: h.cloud!, address: h.address, netns: h.netns }]));
    const execution: LabExecution = { stack, operatorNetns: lab.plan.admin.netns, dir: LAB_DIR, hostNames, ...(Object.keys(cloud).length > 0 ? { cloud } : {}) };

    const stackFile = path.join(opts.stackDir ?? path.resolve(__dirname, ".."), `Pulumi.${stack}.yaml`);
    const peer = /cutover:peer:\s*\S+\/(\S+)/.exec(fs.readFileSync(stackFile, "utf8"))?.[1];
    // A peer not provisioned yet has no outputs, like a stack that was never deployed.
    const peerOutputs = peer && fs.existsSync(outputsFile(peer)) ? JSON.parse(fs.readFileSync(outputsFile(peer), "utf8")) : {};

    const { main } = await evaluateStack({
        stack,
        stackDir: opts.stackDir,
        config: opts.config,
        secrets: { "cutover:sshPrivateKey": privateKey },
        peerOutputs,
        lab: execution,
        timeoutMs: 60 * 60_000,
    });
    if (main.error) throw new LabError(`${stack}: ${main.error.message}`);
    fs.writeFileSync(outputsFile(stack), JSON.stringify(main.outputs), { mode: 0o600 });
    return { stack, evaluation: main, runs: readRuns(LAB_DIR).slice(before), ms: Date.now() - started };
}
