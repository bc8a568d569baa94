// The Cloudflare record set, as plain data. Every record keeps its type and count for
// good: flipping `cutover:live` changes the content of the public names only. (Changing a
// record between A and CNAME makes the provider delete it before creating the new one: a
// window with no record, pulumi/pulumi-cloudflare#687, #693.)
import { DnsPlan } from "../config";

/** `T` is the content's type: plain text here, or a value known later (an address) in the component. */
export interface RecordSpec<T = string> {
    /** Stable key: the Pulumi resource name suffix. */
    key: string;
    /** Fully qualified name. */
    name: string;
    type: "A" | "CNAME";
    content: T;
    proxied: boolean;
    ttl: number;
    /** Cloudflare's import id "<zone id>/<record id>", to adopt an existing record. */
    importId?: string;
}

/** The fully qualified form of a name in the zone ("@" is the apex). */
export function qualified(name: string, zone: string): string {
    return name === "@" ? zone : `${name}.${zone}`;
}

/** A site's origin name: where its edge is, whether or not it is live. */
export function originName(site: string, plan: Pick<DnsPlan, "origin" | "zone">): string {
    return `${site}.${plan.origin}.${plan.zone}`;
}

/**
 * A site's origin records: one A record per edge host (by position, so adding an edge
 * host adds a record), or one CNAME to its load balancer. Never proxied: the public names
 * in front of them are.
 */
export function originRecords<T>(site: string, plan: DnsPlan, edge: { addresses: T[] } | { hostname: T }): RecordSpec<T>[] {
    const name = originName(site, plan);
    if ("hostname" in edge) return [{ key: "origin", name, type: "CNAME", content: edge.hostname, proxied: false, ttl: plan.ttl }];
    return edge.addresses.map((a, i) => ({ key: `origin-${i + 1}`, name, type: "A", content: a, proxied: false, ttl: plan.ttl }));
}

/**
 * The public names: each a CNAME to the live site's origin name (Cloudflare flattens it
 * at the apex). Proxied ones use the automatic TTL (1).
 */
export function liveRecords(plan: DnsPlan, live: string, proxied: boolean): RecordSpec[] {
    return plan.names.map((n) => ({
        key: n === "@" ? "apex" : n.replace(/[^a-z0-9-]/g, "-"),
        name: qualified(n, plan.zone),
        type: "CNAME",
        content: originName(live, plan),
        proxied,
        ttl: proxied ? 1 : plan.ttl,
        importId: plan.adopt[n] ? `${plan.zoneId}/${plan.adopt[n]}` : undefined,
    }));
}
