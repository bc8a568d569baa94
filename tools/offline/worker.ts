// Child process that evaluates one stack and sends the Evaluation back over IPC
// (never through stdout: peer outputs can hold secrets and stdout is a log).
import { evaluate } from "./evaluate";
import { MockOptions } from "./mocks";
import { StackFile } from "./stackfile";

interface Request {
    projectDir: string;
    stackFile: StackFile;
    options: MockOptions;
}

process.once("message", (req: Request) => {
    evaluate(req.projectDir, req.stackFile, req.options)
        .then((evaluation) => process.send!({ evaluation }, undefined, {}, () => process.exit(0)))
        .catch((e: Error) => process.send!({ failure: String(e?.stack ?? e) }, undefined, {}, () => process.exit(1)));
});
