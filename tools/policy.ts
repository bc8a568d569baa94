// npm run policy -- --stack <name> [--dir <folder>] [--pack <policy pack folder>]
// Evaluates the stack offline as a preview (values known only after apply stay unknown),
// then runs the policy pack through the Analyzer gRPC protocol, as `pulumi preview
// --policy-pack` does. Exit 1 on a mandatory violation, 2 on a config or usage error.
import * as path from "path";
import { evaluateStack, exitOnError } from "./offline";
import { POLICY_PACK_DIR, formatPolicyRun, runPolicies } from "./offline/analyzer";
import { PROJECT } from "./offline/evaluate";

function usage(message: string): never {
    console.error(`${message}\nusage: npm run policy -- --stack <name> [--dir <folder>] [--pack <folder>]`);
    process.exit(2);
}

function parseArgs(argv: string[]) {
    let stack = "";
    let dir: string | undefined;
    let pack = POLICY_PACK_DIR;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--stack" || argv[i] === "-s") stack = argv[++i] ?? "";
        else if (argv[i] === "--dir") dir = path.resolve(argv[++i] ?? "");
        else if (argv[i] === "--pack") pack = path.resolve(argv[++i] ?? "");
        else usage(`unknown argument ${JSON.stringify(argv[i])}`);
    }
    if (!stack) usage("--stack is required");
    return { stack, dir, pack };
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    const { main, stackFile } = await evaluateStack({ stack: args.stack, stackDir: args.dir, preview: true });
    if (main.error) {
        console.error(main.error.message);
        process.exit(main.error.kind === "config" ? 2 : 1);
    }
    console.log(`cutover policy: stack ${args.stack}, ${main.registrations.length} resources (offline preview), pack ${path.relative(process.cwd(), args.pack) || "."}`);
    const run = await runPolicies(main.registrations, { packDir: args.pack, project: PROJECT, stack: args.stack, config: stackFile.config, preview: true });
    console.log(formatPolicyRun(run, main.registrations, path.relative(process.cwd(), args.pack) || args.pack));
    const mandatory = run.diagnostics.filter((d) => d.level === "mandatory").length;
    const advisory = run.diagnostics.length - mandatory;
    console.log(`\n${mandatory} mandatory, ${advisory} advisory violation${advisory === 1 ? "" : "s"}`);
    process.exit(mandatory > 0 ? 1 : 0);
}

main().catch(exitOnError);
