// Inventory of an existing host before the program changes anything (Ghost(Pro)'s first
// step): packages, listening sockets, firewall rules, cron jobs, disks and data folders.
// The script only reads; it prints sections that parseInventory turns into data.
import { AS_ROOT } from "../script";

export interface HostInventory {
    packages: Array<{ name: string; version: string }>;
    listening: Array<{ proto: string; address: string; port: number; process: string }>;
    /** The firewall found; UFW's rules as `ufw show added` spells them (without "ufw"), iptables' as `iptables -S`. */
    firewall: { tool: "ufw" | "iptables" | "none"; active: boolean; rules: string[] };
    /** Cron lines with their source file (or "user:<name>"); values that look like secrets redacted on the host. */
    cron: Array<{ source: string; line: string }>;
    /** Mounted filesystems, in KiB. */
    disks: Array<{ mount: string; sizeKb: number; usedKb: number; availKb: number }>;
    /** Size of the data folders that exist (database, cache, web roots), in KiB. */
    data: Array<{ path: string; kb: number }>;
}

/** Folders whose size decides how data moves (a dump of 500 GB is hours of downtime). */
export const DATA_FOLDERS = ["/var/lib/mysql", "/var/lib/postgresql", "/var/lib/redis", "/var/www", "/srv"];

const SECTIONS = ["packages", "listening", "firewall", "cron", "disks", "data"] as const;

export function inventoryScript(host: string): string {
    return `#!/bin/bash
# cutover inventory of ${host}: reads packages, sockets, firewall, cron, disks; changes nothing.
set -uo pipefail
export LC_ALL=C
fail() { echo "inventory on ${host}: $*" >&2; exit 1; }
# Process names of listening sockets and the firewall's rules need root.
${AS_ROOT}
# Secrets in cron lines (passwords on command lines, tokens in URLs) never leave the host.
redact() { sed -E 's/((pass(word)?|passwd|secret|token|api[_-]?key)[A-Za-z_]*[=:][ ]*)[^ ]+/\\1[redacted]/Ig; s/(^|[ \\t])-p[^ \\t]+/\\1-p[redacted]/g; s#://[^:/@ ]+:[^@ ]+@#://[redacted]@#g'; }
echo "== packages"
if command -v dpkg-query >/dev/null; then
    dpkg-query -W -f '\${db:Status-Status}\\t\${Package}\\t\${Version}\\n' | awk -F'\\t' '$1 == "installed" { print $2 "\\t" $3 }'
elif command -v rpm >/dev/null; then
    rpm -qa --qf '%{NAME}\\t%{VERSION}-%{RELEASE}\\n'
fi
echo "== listening"
ss -H -lntu -p | awk '{ p = $7; sub(/^users:\\(\\("/, "", p); sub(/".*/, "", p); print $1 "\\t" $5 "\\t" p }'
echo "== firewall"
if command -v ufw >/dev/null && ufw status | grep -q '^Status: active'; then
    echo "ufw active"
    # The rules as commands (the form cutover's adoption reads), not the status table.
    ufw show added | sed -n 's/^ufw //p'
elif command -v iptables >/dev/null; then
    echo "iptables $(iptables -S INPUT | grep -c '^-A' || true)"
    iptables -S INPUT | grep '^-A' || true
else
    echo "none"
fi
echo "== cron"
for f in /etc/crontab /etc/cron.d/*; do
    [ -f "$f" ] || continue
    grep -Ev '^[[:space:]]*(#|$)|^[A-Za-z_]+=' "$f" | redact | sed "s|^|$f\\t|"
done
for u in $(cut -d: -f1 /etc/passwd); do
    crontab -l -u "$u" 2>/dev/null | grep -Ev '^[[:space:]]*(#|$)|^[A-Za-z_]+=' | redact | sed "s|^|user:$u\\t|"
done
echo "== disks"
df -P -k -x tmpfs -x devtmpfs -x squashfs -x overlay 2>/dev/null | awk 'NR > 1 { print $6 "\\t" $2 "\\t" $3 "\\t" $4 }'
echo "== data"
for d in ${DATA_FOLDERS.join(" ")}; do
    [ -d "$d" ] && printf '%s\\t%s\\n' "$d" "$(du -sk "$d" 2>/dev/null | cut -f1)"
done
echo "== end"
`;
}

/** Splits "[addr]:port", "addr:port" and "*:port" as ss prints them. */
function splitAddress(s: string): { address: string; port: number } {
    const i = s.lastIndexOf(":");
    let address = s.slice(0, i);
    // ss prints IPv6 in brackets and may add an interface ("%lo").
    address = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
    return { address, port: Number(s.slice(i + 1)) };
}

/** The inventory script's output as data. Throws on output that is not the script's. */
export function parseInventory(text: string): HostInventory {
    const sections = new Map<string, string[]>();
    let current: string | undefined;
    for (const line of text.split("\n")) {
        const head = /^== (\w+)$/.exec(line);
        if (head) {
            current = head[1];
            sections.set(current, []);
        } else if (current && line !== "") {
            sections.get(current)!.push(line);
        }
    }
    const missing = [...SECTIONS, "end"].filter((s) => !sections.has(s));
    if (missing.length > 0) throw new Error(`inventory output is incomplete: no section ${missing.join(", ")}`);
    const fields = (s: string) => sections.get(s)!.map((l) => l.split("\t"));

    const [fwHead = "none", ...fwRules] = sections.get("firewall")!;
    const tool = fwHead.startsWith("ufw") ? "ufw" : fwHead.startsWith("iptables") ? "iptables" : "none";
    return {
        packages: fields("packages").filter((f) => f.length === 2).map(([name, version]) => ({ name, version })),
        listening: fields("listening")
            .filter((f) => f.length >= 2)
            .map(([proto, local, process]) => ({ proto, ...splitAddress(local), process: process ?? "" }))
            .sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto) || a.address.localeCompare(b.address)),
        firewall: { tool, active: tool === "ufw" || fwRules.length > 0, rules: fwRules },
        cron: fields("cron").filter((f) => f.length >= 2).map(([source, ...rest]) => ({ source, line: rest.join("\t") })),
        disks: fields("disks").filter((f) => f.length === 4).map(([mount, size, used, avail]) => ({ mount, sizeKb: Number(size), usedKb: Number(used), availKb: Number(avail) })),
        data: fields("data").filter((f) => f.length === 2 && f[1] !== "").map(([p, kb]) => ({ path: p, kb: Number(kb) })),
    };
}
