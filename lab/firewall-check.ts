// Checks, from real vantage points, that the host firewalls enforce exactly the rules
// the program rendered: listeners on every candidate port of every host, then TCP
// connects from the operator (inside adminCidrs), a client on the internet, a host of
// the same site and a host of the other site.
import { containsAddress, isWholeInternet, parseCidr } from "../components/cidr";
import { InboundRule, edgeAdminRules, inboundRules, meshRules } from "../components/firewall/render";
import { MESH_ROLE_BASE } from "../components/config";
import { hostAddress } from "../components/cidr";
import { Role } from "../components/types";
import { Lab, RunResult } from "./lab";
import { ADMIN_CIDR, LAB_MESH, LabHost, LabPlan, segmentOf } from "./topology";

/** The rules the program renders for a provisioned lab host: its role's, plus the tinc port from every member. */
export function labHostRules(plan: LabPlan, h: LabHost): InboundRule[] {
    const members = plan.hosts.filter((x) => !x.spare).map((x) => x.address);
    return [
        ...inboundRules({ role: h.role as Role, dbEngine: "mariadb", adminCidrs: [ADMIN_CIDR], siteCidr: segmentOf(plan, h.site).cidr, publicSources: ["0.0.0.0/0", "::/0"], meshCidr: LAB_MESH.cidr }),
        ...meshRules(655, members),
        // The edges' admin socket from both sites' database hosts, at their mesh addresses only.
        ...(h.role === "edge" ? edgeAdminRules(Object.values(LAB_MESH.siteRange).map((r) => hostAddress(parseCidr(r)!, MESH_ROLE_BASE.db))) : []),
    ];
}

export interface Probe {
    from: string;
    to: string;
    port: number;
    expected: boolean;
    open: boolean;
}

/** Whether the rules admit a TCP connection from `source` to `port`. */
export function admits(rules: InboundRule[], source: string, port: number): boolean {
    return rules.some((r) => r.protocol === "tcp" && r.port === port && r.sources.some((s) => isWholeInternet(s) || containsAddress(parseCidr(s)!, source)));
}

interface Vantage {
    name: string;
    address: string;
    run: (command: string) => Promise<RunResult>;
}

/** `targets`: each host with the rules rendered for it. Ports: every rule's port plus `extraPorts`. */
export async function probeFirewalls(lab: Lab, targets: Array<{ name: string; address: string; rules: InboundRule[] }>, extraPorts: number[]): Promise<Probe[]> {
    const ports = [...new Set([...targets.flatMap((t) => t.rules.map((r) => r.port)), ...extraPorts])].sort((a, b) => a - b);
    const listen = ports.filter((p) => p !== 22);
    for (const t of targets) {
        // Bound to the host's own address: a real service may hold the port on loopback or the mesh.
        const r = await lab.enter(t.name, `for p in ${listen.join(" ")}; do setsid nohup nc -lk ${t.address} "$p" </dev/null >/dev/null 2>&1 & done; sleep 0.3`);
        if (r.code !== 0) throw new Error(`could not start listeners on ${t.name}: ${r.stderr}`);
    }
    const byName = new Map(lab.plan.hosts.map((h) => [h.name, h]));
    const vantages: Vantage[] = [
        { name: "operator", address: lab.plan.admin.address, run: (c) => lab.operator(c) },
        { name: "client", address: lab.plan.client.address, run: (c) => lab.client(c) },
        ...lab.plan.hosts.map((h) => ({ name: h.name, address: h.address, run: (c: string) => lab.enter(h.name, c) })),
    ];
    const probes: Probe[] = [];
    try {
        for (const v of vantages) {
            const script = targets
                .filter((t) => t.name !== v.name)
                .flatMap((t) => ports.map((p) => `(nc -z -w 1 ${byName.get(t.name)?.address ?? t.address} ${p} 2>/dev/null && echo "${t.name} ${p} open" || echo "${t.name} ${p} closed") &`))
                .join("\n");
            const r = await v.run(`${script}\nwait`);
            for (const line of r.stdout.trim().split("\n").filter(Boolean)) {
                const [to, port, state] = line.split(" ");
                const target = targets.find((t) => t.name === to)!;
                probes.push({ from: v.name, to, port: Number(port), expected: admits(target.rules, v.address, Number(port)), open: state === "open" });
            }
        }
    } finally {
        for (const t of targets) await lab.enter(t.name, "pkill -x nc || true");
    }
    return probes;
}
