// npm run plan -- --stack <name> [--dir <folder with Pulumi.<name>.yaml>] [--preview]
// Evaluates index.ts with Pulumi.<name>.yaml under the SDK's mock runtime (no CLI, no cloud)
// and prints every resource, the outputs, and (when the stack has a peer) what it read from it.
import * as path from "path";
import { evaluateStack, StackFileError } from "./offline";
import { formatOutputs, formatResources } from "./offline/format";

function usage(message: string): never {
    console.error(`${message}\nusage: npm run plan -- --stack <name> [--dir <folder>] [--preview]`);
    process.exit(2);
}

function parseArgs(argv: string[]): { stack: string; dir?: string; preview: boolean } {
    let stack = "";
    let dir: string | undefined;
    let preview = false;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--stack" || argv[i] === "-s") stack = argv[++i] ?? "";
        else if (argv[i].startsWith("--stack=")) stack = argv[i].slice(8);
        else if (argv[i] === "--dir") dir = path.resolve(argv[++i] ?? "");
        else if (argv[i] === "--preview") preview = true;
        else usage(`unknown argument ${JSON.stringify(argv[i])}`);
    }
    if (!stack) usage("--stack is required");
    return { stack, dir, preview };
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    const started = Date.now();
    const result = await evaluateStack({ stack: args.stack, stackDir: args.dir, preview: args.preview });
    const { main, peer, stackFile } = result;

    console.log(`cutover plan: stack ${args.stack} (${stackFile.file}), offline under the Pulumi SDK's mock runtime${args.preview ? ", as a preview" : ""}`);
    if (peer) {
        const reference = stackFile.config["cutover:peer"];
        if (peer.error) {
            console.error(`\npeer ${reference} (Pulumi.${peer.stack}.yaml) is invalid, so its outputs are not served:\n${peer.error.message}`);
            process.exit(peer.error.kind === "config" ? 2 : 1);
        }
        console.log(`peer: ${reference}, evaluated offline from Pulumi.${peer.stack}.yaml (${peer.registrations.length} resources); its outputs are served to the StackReference`);
    }
    if (main.error) {
        console.error(`\n${main.error.message}`);
        process.exit(main.error.kind === "config" ? 2 : 1);
    }
    console.log(`\nResources (${main.registrations.length}):`);
    console.log(formatResources(main));
    console.log(`\nOutputs:`);
    console.log(formatOutputs(main));
    console.log(`\nplanned ${main.registrations.length} resources in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((e) => {
    if (e instanceof StackFileError) {
        console.error(e.message);
        process.exit(2);
    }
    console.error(e?.stack ?? e);
    process.exit(1);
});
