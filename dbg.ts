import { Lab } from "./lab/lab";
import { LAB_STACKS, provision } from "./lab/runtime";
import { flipUnderLoad } from "./lab/flip";
async function main() {
    const lab = new Lab();
    if (process.argv[2] === "up") {
        await lab.up();
        for (const s of [LAB_STACKS.old, LAB_STACKS.new, LAB_STACKS.old, LAB_STACKS.new]) await provision(lab, s);
        return;
    }
    const run = await flipUnderLoad(lab, { url: "http://192.0.2.10/", client: process.argv[3], rate: 50, seconds: 10, leadMs: 1500, config: { "cutover:live": process.argv[2], "cutover:runbook": JSON.stringify({ parity: ["cutover_probe.writes"] }) } });
    console.log(run.error, run.audit, run.from, run.to);
}
main().catch((e) => { console.error(e); process.exit(1); });
