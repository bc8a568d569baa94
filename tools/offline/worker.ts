// Child process that evaluates one stack and sends the Evaluation back over IPC
// (never through stdout: peer outputs can hold secrets and stdout is a log).
// It loads the SDK and the providers as soon as it starts, before its request arrives:
// a worker forked ahead of time (index.ts) has that done while the one before it runs.
import "@pulumi/pulumi";
import "@pulumi/aws";
import "@pulumi/cloudflare";
import "@pulumi/command";
import "@pulumi/digitalocean";
import "@pulumi/random";
import "@pulumi/tls";
import { evaluate } from "./evaluate";
import { MockOptions } from "./mocks";
import { StackFile } from "./stackfile";

interface Request {
    projectDir: string;
    stackFile: StackFile;
    options: MockOptions;
}

// A spare that is never used ends with its parent.
process.once("disconnect", () => process.exit(0));
process.once("message", (req: Request) => {
    evaluate(req.projectDir, req.stackFile, req.options)
        .then((evaluation) => process.send!({ evaluation: { ...evaluation, peakMb: Math.round(process.resourceUsage().maxRSS / 1024) } }, undefined, {}, () => process.exit(0)))
        .catch((e: Error) => process.send!({ failure: String(e?.stack ?? e) }, undefined, {}, () => process.exit(1)));
});
