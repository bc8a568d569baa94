// Child process that evaluates stacks, one request at a time, and sends each Evaluation back
// over IPC (never through stdout: peer outputs can hold secrets and stdout is a log).
// It loads the SDK and the providers once, as soon as it starts; loading them is most of a
// small stack's evaluation, so the parent keeps an idle worker for the next request. The
// program (index.ts) exports a function, run afresh for each evaluation; its modules hold no
// state between runs (tests/unit/offline.test.ts).
import { Evaluation, evaluate } from "./evaluate";
import { MockOptions } from "./mocks";
import { StackFile } from "./stackfile";

interface Request {
    projectDir: string;
    stackFile: StackFile;
    options: MockOptions;
}

// The SDK and every Pulumi package the program depends on (package.json), loaded now.
for (const name of Object.keys(require("../../package.json").dependencies)) {
    if (name.startsWith("@pulumi/") && name !== "@pulumi/policy") require(name);
}

/** A worker past this much resident memory answers and exits rather than serve again. */
const RETIRE_MB = 1024;

// An idle worker ends with its parent.
process.once("disconnect", () => process.exit(0));
process.on("message", async (req: Request) => {
    let answer: { evaluation?: Evaluation; failure?: string };
    try {
        const evaluation = await evaluate(req.projectDir, req.stackFile, req.options);
        answer = { evaluation: { ...evaluation, peakMb: Math.round(process.resourceUsage().maxRSS / 1024) } };
    } catch (e) {
        answer = { failure: String((e as Error)?.stack ?? e) };
    }
    // A program that failed halfway may leave work behind (pending applies, late rejections):
    // that worker is not used again. A config error comes before any resource, so it leaves none.
    const failed = answer.failure !== undefined || answer.evaluation?.error?.kind === "program";
    const retire = failed || process.memoryUsage().rss / 2 ** 20 > RETIRE_MB;
    // What the evaluation left is garbage now: collect it before the next request, so the
    // process's peak stays that of one evaluation rather than growing with each.
    process.send!({ ...answer, retire }, undefined, {}, () => (retire ? process.exit(answer.failure ? 1 : 0) : global.gc?.()));
});
