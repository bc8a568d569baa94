// The tinc mesh on real tincd daemons in lab hosts of both sites, provisioned by the program.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MESH_ROLE_BASE } from "../../components/config";
import { meshHubs, meshNodeName } from "../../components/mesh/render";
import { Lab } from "../../lab/lab";
import { labSkip } from "./requirements";
import { baselineLab, handOn, testPassed } from "./baseline";
import { unreachablePairs } from "../../lab/mesh-check";
import { LAB_STACKS, provision } from "../../lab/runtime";
import { LabHost, labHostEntries } from "../../lab/topology";
import { referenceConfig, stackDir } from "../helpers";

const skip = labSkip(["tincd", "ufw"]);

/** Mesh address of a lab host, as the program's address plan gives it (role block + position). */
function meshAddress(lab: Lab, h: LabHost): string {
    const sameRole = lab.plan.hosts.filter((x) => x.site === h.site && x.role === h.role);
    const siteOctet = h.site === "old" ? 1 : 2;
    return `198.18.${siteOctet}.${MESH_ROLE_BASE[h.role as keyof typeof MESH_ROLE_BASE] + sameRole.indexOf(h)}`;
}

function unreachable(lab: Lab, from: LabHost[], to: LabHost[], withinMs = 60_000): Promise<string[]> {
    const t = (hs: LabHost[]) => hs.map((h) => ({ name: h.name, meshAddress: meshAddress(lab, h) }));
    return unreachablePairs(lab, t(from), t(to), withinMs);
}

async function tincdPids(lab: Lab, hosts: LabHost[]): Promise<Record<string, string>> {
    const pids: Record<string, string> = {};
    for (const h of hosts) pids[h.name] = (await lab.enter(h.name, "cat /run/tinc.cutover.pid | cut -d' ' -f1")).stdout.trim();
    return pids;
}

describe("tinc mesh across both sites", { skip, timeout: 900_000 }, () => {
    let lab: Lab;
    let members: LabHost[];
    let passed = true;
    before(async () => {
        // Old, new, old, new: old learns new's members on its second run.
        lab = await baselineLab();
        members = lab.plan.hosts.filter((h) => !h.spare);
    });
    afterEach((t) => {
        passed &&= testPassed(t);
    });
    after(async () => {
        // The host added last leaves the new site first, then the old site's view of it.
        await handOn(lab, passed, [LAB_STACKS.new, LAB_STACKS.old]);
    });

    it("connects all pairs of the 3 old and 3 new hosts over mesh addresses", async () => {
        assert.equal(members.length, 6);
        assert.deepEqual(await unreachable(lab, members, members), []);
    });

    it("reaches a host that is in no one's ConnectTo list (tinc routes through the hubs)", async () => {
        const nodes = members.map((h) => ({ node: meshNodeName(h.name), site: h.site }));
        const hubs = meshHubs(nodes.map((n) => ({ ...n, host: "", publicAddress: "", port: 655, meshAddress: "", publicKey: "" })), 2);
        const loners = members.filter((h) => !hubs.includes(meshNodeName(h.name)));
        assert.ok(loners.length >= 2, "every member is a hub: nothing to show");
        for (const h of members) {
            const conf = (await lab.enter(h.name, "cat /etc/tinc/cutover/tinc.conf")).stdout;
            for (const l of loners) assert.doesNotMatch(conf, new RegExp(`ConnectTo = ${meshNodeName(l.name)}$`, "m"), `${h.name} connects to ${l.name}`);
        }
        assert.deepEqual(await unreachable(lab, loners, loners), []);
    });

    it("keeps the rest mutually reachable when tincd stops on an intermediate host", async () => {
        const hub = members.find((h) => h.name === "old-db-1")!;
        await lab.enter(hub.name, "kill $(cut -d' ' -f1 /run/tinc.cutover.pid)");
        try {
            const rest = members.filter((h) => h !== hub);
            assert.deepEqual(await unreachable(lab, rest, rest, 60_000), []);
        } finally {
            await lab.enter(hub.name, "tincd -n cutover --pidfile=/run/tinc.cutover.pid --logfile=/var/log/tinc.cutover.log </dev/null >/dev/null 2>&1");
        }
        assert.deepEqual(await unreachable(lab, members, [hub], 60_000), []);
    });

    it("lets a host that is not a member reach no tinc port", async () => {
        for (const from of [(c: string) => lab.client(c), (c: string) => lab.operator(c), (c: string) => lab.enter("new-app-2", c)]) {
            const r = await from(`for a in ${members.map((m) => m.address).join(" ")}; do nc -z -w 1 $a 655 && echo "open $a"; done; true`);
            assert.equal(r.stdout.trim(), "", `a non-member reached the tinc port: ${r.stdout}`);
        }
    });

    it("adds a host to the new site: it joins, every member reaches it, no other daemon restarts", async () => {
        const spare = lab.host("new-app-2");
        const before = await tincdPids(lab, members);
        const dir = stackDir({
            "lab-new": { ...referenceConfig("lab-new"), "cutover:hosts": labHostEntries(lab.plan, "new", true) },
            "lab-old": referenceConfig("lab-old"),
        });
        const joined = await provision(lab, LAB_STACKS.new, { stackDir: dir });
        assert.ok(joined.runs.some((r) => r.host === spare.name && r.step.includes("mesh") && r.action === "create"));
        await provision(lab, LAB_STACKS.old, { stackDir: dir });
        assert.equal(meshAddress(lab, spare), "198.18.2.31", "the new host took the next address of its role");
        assert.deepEqual(await unreachable(lab, members, [spare]), []);
        assert.deepEqual(await unreachable(lab, [spare], members), []);
        assert.deepEqual(await tincdPids(lab, members), before, "a member's tincd was restarted instead of reloaded");
    });
});
