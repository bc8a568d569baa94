// Human-readable rendering of an offline evaluation. Secrets never print.
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { Evaluation, Registration } from "./evaluate";


export const SECRET_MASK = "[secret]";
export const UNKNOWN_TEXT = "(known after apply)";

/** Replaces secrets with a mask and unknowns with a marker, recursively. */
export function mask(v: unknown): unknown {
    if (v === pulumi.runtime.unknownValue) return UNKNOWN_TEXT;
    if (Array.isArray(v)) return v.map(mask);
    if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (o[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig) return SECRET_MASK;
        if (o[pulumi.runtime.specialSigKey] === pulumi.runtime.specialResourceSig) return `<resource ${String(o.urn).split("::").pop()}>`;
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(o)) if (k !== "__defaults") out[k] = mask(x);
        return out;
    }
    return v;
}

function short(value: unknown): string {
    if (typeof value === "string") {
        if (value.includes("\n") || value.length > 72) {
            const lines = value.split("\n").length;
            const hash = crypto.createHash("sha256").update(value).digest("hex").slice(0, 12);
            const kind = value.startsWith("#cloud-config") ? "cloud-init" : value.startsWith("#!") ? "script" : "text";
            // A rendered script says what it does on its second line ("# <about>, rendered by cutover.").
            const about = kind === "script" ? /^# (.*), rendered by cutover\.$/m.exec(value.split("\n")[1] ?? "")?.[1] : undefined;
            return `<${kind}${about ? ` "${about}"` : ""}, ${lines} lines, sha256:${hash}>`;
        }
        return value === SECRET_MASK || value === UNKNOWN_TEXT ? value : JSON.stringify(value);
    }
    const json = JSON.stringify(value, (_k, x) => (typeof x === "string" && (x.includes("\n") || x.length > 72) ? short(x) : x));
    return json.length > 240 ? `${json.slice(0, 237)}...` : json;
}

function label(urn: string): string {
    return urn ? urn.split("::").pop()! : "";
}

/** One line per resource, children indented under their parent, key inputs below. */
export function formatResources(e: Evaluation): string {
    const children = new Map<string, Registration[]>();
    for (const r of e.registrations) {
        const list = children.get(r.parent) ?? [];
        list.push(r);
        children.set(r.parent, list);
    }
    const lines: string[] = [];
    const walk = (parent: string, depth: number) => {
        for (const r of children.get(parent) ?? []) {
            const pad = "  ".repeat(depth);
            const verb = r.mode === "read" ? "read" : "+";
            lines.push(`${pad}${verb} ${r.type}  ${r.name}${r.parent ? `  (parent ${label(r.parent)})` : ""}`);
            const inputs = mask(r.inputs) as Record<string, unknown>;
            const shown = Object.entries(inputs).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0));
            for (const [k, v] of shown) lines.push(`${pad}      ${k}: ${short(v)}`);
            walk(r.urn, depth + 1);
        }
    };
    walk("", 0);
    return lines.join("\n");
}

export function formatOutputs(e: Evaluation): string {
    return JSON.stringify(mask(e.outputs), null, 2);
}

/**
 * What changes from evaluation `a` to `b`, resource by resource (by URN): added, removed,
 * and changed inputs with their old and new values (secrets masked; a changed secret
 * shows as a change of "[secret]").
 */
export function formatChanges(a: Evaluation, b: Evaluation): { lines: string; changed: number } {
    const before = new Map(a.registrations.map((r) => [r.urn, r]));
    const after = new Map(b.registrations.map((r) => [r.urn, r]));
    const out: string[] = [];
    for (const [urn, r] of after) {
        const old = before.get(urn);
        if (!old) {
            out.push(`  + ${r.type}  ${r.name}`);
            continue;
        }
        const [x, y] = [mask(old.inputs) as Record<string, unknown>, mask(r.inputs) as Record<string, unknown>];
        const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]));
        if (keys.length === 0) continue;
        out.push(`  ~ ${r.type}  ${r.name}`);
        for (const k of keys.sort()) out.push(`        ${k}: ${short(x[k])} -> ${short(y[k])}`);
    }
    for (const [urn, r] of before) if (!after.has(urn)) out.push(`  - ${r.type}  ${r.name}`);
    return { lines: out.join("\n"), changed: out.filter((l) => /^  [+~-] /.test(l)).length };
}
