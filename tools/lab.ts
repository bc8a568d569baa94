// npm run lab -- up | down | status
// Builds the lab and leaves it running (for poking at it by hand), removes it, or lists it.
import { Lab, LAB_DIR, LabError, labNamespaces } from "../lab/lab";

async function main() {
    const verb = process.argv[2];
    if (verb === "up") {
        const lab = new Lab(undefined, (l) => console.log(l));
        await lab.up();
        console.log(`operator key: ${lab.keyPath}\nenter a host: ip netns exec ${lab.plan.admin.netns} ssh -i ${lab.keyPath} root@<address>`);
        for (const h of lab.plan.hosts) console.log(`  ${h.name.padEnd(12)} ${h.address.padEnd(15)} ${h.role}`);
    } else if (verb === "down") {
        await Lab.down();
        console.log("lab removed");
    } else if (verb === "status") {
        const ns = labNamespaces();
        console.log(ns.length > 0 ? `lab running (${LAB_DIR}):\n  ${ns.join("\n  ")}` : "no lab running");
    } else {
        console.error("usage: npm run lab -- up | down | status");
        process.exit(2);
    }
}

main().catch(async (e) => {
    console.error(e instanceof LabError ? e.message : (e?.stack ?? e));
    process.exit(1);
});
