// Adopting a live legacy host: what its inventory saw serving beyond the role's ports stays
// reachable, from where it was reachable, until cutover:adopt.close names it. The host
// firewall's default deny would otherwise cut off an app on another port (Ghost on 2368
// behind nginx), a monitoring agent, anything the old site serves.
import { isWholeInternet } from "../cidr";
import type { InboundRule } from "../firewall/render";
import { HostInventory } from "./render";

const ANYWHERE = ["0.0.0.0/0", "::/0"];

/** A listener kept open, and why the sources are what they are. */
export interface KeptListener {
    rule: InboundRule;
    process: string;
    /** How the sources were decided, for the warning. */
    basis: string;
}

/** One allow rule of the old UFW, as `ufw show added` spells it (without the leading "ufw"). */
interface OldUfwRule {
    /** Port ranges; "all" when the rule names no port; undefined when it names an application profile. */
    ports?: Array<[number, number]> | "all";
    proto: "tcp" | "udp" | "any";
    source: string[];
}

function portRanges(spec: string): Array<[number, number]> | undefined {
    const out: Array<[number, number]> = [];
    for (const part of spec.split(",")) {
        const m = /^(\d+)(?::(\d+))?$/.exec(part);
        if (!m) return undefined;
        out.push([Number(m[1]), Number(m[2] ?? m[1])]);
    }
    return out;
}

function sourceOf(s: string): string[] {
    if (s === "any") return ANYWHERE;
    return [s.includes("/") ? s : `${s}/${s.includes(":") ? 128 : 32}`];
}

/**
 * Parses an allow (or limit) rule; returns null for rules that admit nothing inbound (deny,
 * reject, outgoing) and a rule without ports for forms it does not understand (profiles).
 */
export function parseUfwRule(line: string): OldUfwRule | null {
    const words = line.replace(/\s+comment\s+'[^']*'\s*$/, "").trim().split(/\s+/);
    if (words[0] !== "allow" && words[0] !== "limit") return null;
    let rest = words.slice(1);
    if (rest[0] === "out") return null;
    if (rest[0] === "in") rest = rest.slice(1);
    // Short form: "allow 22/tcp", "allow 80,443/tcp", "allow 2368"; anything else there is an
    // application profile ("allow OpenSSH", "allow 'Nginx Full'"), whose ports are not known here.
    if (rest.length > 0 && !["from", "to", "proto", "on"].includes(rest[0])) {
        const [spec, proto] = rest[0].split("/");
        const ports = rest.length === 1 ? portRanges(spec) : undefined;
        if (!ports || (proto && proto !== "tcp" && proto !== "udp")) return { proto: "any", source: ANYWHERE };
        return { ports, proto: (proto as "tcp" | "udp" | undefined) ?? "any", source: ANYWHERE };
    }
    let source = ANYWHERE;
    let proto: OldUfwRule["proto"] = "any";
    let ports: OldUfwRule["ports"] = "all";
    for (let i = 0; i < rest.length; i++) {
        const [word, value] = [rest[i], rest[i + 1] ?? ""];
        // "on <interface>" is not kept: the rule is carried over for every interface (more open, never less).
        if (word === "from") source = sourceOf(value);
        else if (word === "proto") proto = value === "tcp" || value === "udp" ? value : "any";
        else if (word === "port") ports = portRanges(value);
        else if (word === "app") ports = undefined;
        else continue;
        i++;
    }
    return { ports, proto, source };
}

function covers(r: OldUfwRule, proto: string, port: number): boolean {
    if (r.proto !== "any" && r.proto !== proto) return false;
    return r.ports === "all" || (Array.isArray(r.ports) && r.ports.some(([a, b]) => port >= a && port <= b));
}

function isLoopback(address: string): boolean {
    return /^127\./.test(address) || address === "::1";
}

/** Whether cutover:adopt.close names this listener. */
function closed(close: string[], host: string, proto: string, port: number): boolean {
    return close.some((c) => c === "all" || c === `${port}/${proto}` || c === `${host}:${port}/${proto}`);
}

/**
 * The listeners of an adopted host to keep open: every socket the inventory saw on a
 * non-loopback address whose port the role's rules do not already serve. Sources: anywhere
 * when the host had no active firewall; the old UFW's sources for the port when it had one
 * (not kept when no rule admitted it); anywhere when the old rules cannot be read (iptables,
 * UFW application profiles), since an outage is worse than a port left as open as it may have been.
 */
export function keptListeners(host: string, seen: HostInventory, roleRules: InboundRule[], close: string[]): KeptListener[] {
    const kept = new Map<string, KeptListener>();
    const oldRules = seen.firewall.tool === "ufw" ? seen.firewall.rules.map(parseUfwRule).filter((r): r is OldUfwRule => r !== null) : [];
    const unreadable = oldRules.some((r) => r.ports === undefined);
    for (const l of seen.listening) {
        const proto = l.proto === "udp" ? "udp" : l.proto === "tcp" ? "tcp" : undefined;
        // DHCP client sockets (68, 546): UFW's own before-rules answer them.
        if (!proto || isLoopback(l.address) || (proto === "udp" && (l.port === 68 || l.port === 546))) continue;
        const key = `${l.port}/${proto}`;
        if (kept.has(key) || roleRules.some((r) => r.protocol === proto && r.port === l.port) || closed(close, host, proto, l.port)) continue;
        let sources: string[];
        let basis: string;
        if (!seen.firewall.active) {
            sources = ANYWHERE;
            basis = "no firewall was active";
        } else if (seen.firewall.tool === "ufw") {
            const admitting = oldRules.filter((r) => covers(r, proto, l.port));
            if (admitting.length === 0 && !unreadable) continue;
            sources = admitting.length > 0 ? [...new Set(admitting.flatMap((r) => r.source))].sort() : ANYWHERE;
            basis = admitting.length > 0 ? "as the old UFW rules admitted it" : "the old UFW rules name application profiles";
        } else {
            sources = ANYWHERE;
            basis = "the old iptables rules are replaced by UFW";
        }
        const process = l.process.replace(/[^\w.-]/g, "") || "unknown";
        kept.set(key, { rule: { protocol: proto, port: l.port, sources, purpose: `kept for ${process} seen by the inventory` }, process, basis });
    }
    return [...kept.values()].sort((a, b) => a.rule.port - b.rule.port || a.rule.protocol.localeCompare(b.rule.protocol));
}

/** Where an adopted server listened on `port` beyond loopback (its apps connect there). */
export function listenAddresses(seen: HostInventory | null | undefined, port: number): string[] {
    return (seen?.listening ?? []).filter((l) => l.proto === "tcp" && l.port === port && !isLoopback(l.address)).map((l) => l.address);
}

/** The update's warning for one adopted host. */
export function keptWarning(host: string, kept: KeptListener[]): string | undefined {
    if (kept.length === 0) return undefined;
    const what = kept.map((k) => `${k.rule.port}/${k.rule.protocol} (${k.process}) from ${k.rule.sources.every(isWholeInternet) ? "anywhere" : k.rule.sources.join(", ")}: ${k.basis}`);
    return `${host}: keeping what the inventory saw serving: ${what.join("; ")}. Close them with cutover:adopt.close once nothing needs them`;
}
