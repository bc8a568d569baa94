// npm run plan -- --stack <name> [--dir <folder with Pulumi.<name>.yaml>] [--preview] [--no-policy] [--live <site>]
// Evaluates index.ts with Pulumi.<name>.yaml under the SDK's mock runtime (no CLI, no cloud)
// and prints every resource, the outputs, what it read from its peer, and the policy verdicts.
// --live <site>: also evaluates the stack with cutover:live flipped to <site> and prints
// exactly what the flip changes.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { evaluateStack, exitOnError } from "./offline";
import { POLICY_PACK_DIR, formatPolicyRun, runPolicies } from "./offline/analyzer";
import { PROJECT } from "./offline/evaluate";
import { formatChanges, formatOutputs, formatResources } from "./offline/format";

function usage(message: string): never {
    console.error(`${message}\nusage: npm run plan -- --stack <name> [--dir <folder>] [--preview] [--no-policy] [--live <site>]`);
    process.exit(2);
}

function parseArgs(argv: string[]): { stack: string; dir?: string; preview: boolean; policy: boolean; live?: string } {
    let stack = "";
    let live: string | undefined;
    let dir: string | undefined;
    let preview = false;
    let policy = true;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--stack" || argv[i] === "-s") stack = argv[++i] ?? "";
        else if (argv[i].startsWith("--stack=")) stack = argv[i].slice(8);
        else if (argv[i] === "--dir") dir = path.resolve(argv[++i] ?? "");
        else if (argv[i] === "--preview") preview = true;
        else if (argv[i] === "--no-policy") policy = false;
        else if (argv[i] === "--live") live = argv[++i] ?? "";
        else usage(`unknown argument ${JSON.stringify(argv[i])}`);
    }
    if (!stack) usage("--stack is required");
    if (live !== undefined && !/^[a-z][a-z0-9-]{0,30}$/.test(live)) usage(`--live: ${JSON.stringify(live)} is not a site name`);
    return { stack, dir, preview, policy, live };
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    const started = Date.now();
    // Comparing two evaluations needs the same keys and passwords in both, as state keeps them.
    const keepIn = args.live ? fs.mkdtempSync(path.join(os.tmpdir(), "cutover-plan-")) : undefined;
    const result = await evaluateStack({ stack: args.stack, stackDir: args.dir, preview: args.preview, keepIn });
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
    let mandatory = 0;
    if (args.policy) {
        const run = await runPolicies(main.registrations, { packDir: POLICY_PACK_DIR, project: PROJECT, stack: args.stack, config: stackFile.config, preview: args.preview });
        console.log(`\n${formatPolicyRun(run, main.registrations, "policies")}`);
        mandatory = run.diagnostics.filter((d) => d.level === "mandatory").length;
    }
    if (args.live) {
        if (stackFile.config["cutover:live"] === undefined) {
            console.error(`\n--live: stack ${args.stack} has no cutover:live (the stack with cutover:dns.names owns it)`);
            process.exit(2);
        }
        const flipped = await evaluateStack({ stack: args.stack, stackDir: args.dir, preview: args.preview, keepIn, config: { "cutover:live": args.live }, peerOutputs: peer?.outputs ?? {} });
        if (flipped.main.error) {
            console.error(`\nwith cutover:live=${args.live}: ${flipped.main.error.message}`);
            process.exit(flipped.main.error.kind === "config" ? 2 : 1);
        }
        const changes = formatChanges(main, flipped.main);
        console.log(`\nIf cutover:live were ${JSON.stringify(args.live)} (now ${JSON.stringify(stackFile.config["cutover:live"])}): ${changes.changed} resource(s) change`);
        if (changes.changed > 0) console.log(changes.lines);
    }
    if (keepIn) fs.rmSync(keepIn, { recursive: true, force: true });
    console.log(`\nplanned ${main.registrations.length} resources in ${((Date.now() - started) / 1000).toFixed(1)} s${mandatory > 0 ? `; ${mandatory} mandatory policy violation(s)` : ""}`);
    process.exit(mandatory > 0 ? 1 : 0);
}

main().catch(exitOnError);
