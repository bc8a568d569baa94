// Shared test helpers: temporary stack files and views on an offline evaluation.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { ConfigError, parseSiteConfig } from "../components/config";
import { Evaluation, Registration, isSecretValue, unwrapSecrets } from "../tools/offline";
import type { RdsReplicaPlan } from "../components/database/rds";

export const ROOT = path.resolve(__dirname, "..");

/** A temp folder of Pulumi.<stack>.yaml files; values are written as YAML (objects stay objects). */
export function stackDir(stacks: Record<string, Record<string, unknown>>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-stacks-"));
    for (const [name, config] of Object.entries(stacks)) {
        fs.writeFileSync(path.join(dir, `Pulumi.${name}.yaml`), YAML.stringify({ config }));
    }
    return dir;
}

export function referenceConfig(stack: string): Record<string, unknown> {
    return (YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> }).config;
}

/** A reference stack's config without its peer, for a stack file on its own in a temp folder. */
export function standalone(stack: string): Record<string, unknown> {
    const { "cutover:peer": _peer, ...config } = referenceConfig(stack);
    // Without a peer there is nothing to replicate from: the site's data is its own.
    for (const key of ["cutover:database", "cutover:cache"]) {
        if (config[key]) config[key] = { ...(config[key] as object), phase: "primary" };
    }
    if (config["cutover:live"]) config["cutover:live"] = config["cutover:site"];
    return config;
}

/** Removes the secret wrappers (for asserting on values). */
export const plain = unwrapSecrets;

/** The wire value with every secret replaced by "[secret]": what may ever be shown. */
export function withoutSecrets(v: unknown): unknown {
    if (isSecretValue(v)) return "[secret]";
    if (Array.isArray(v)) return v.map(withoutSecrets);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutSecrets(x)]));
    return v;
}

export function ofType(e: Evaluation, type: string): Registration[] {
    return e.registrations.filter((r) => r.type === type);
}

export function named(e: Evaluation, type: string, name: string): Registration {
    const r = e.registrations.find((x) => x.type === type && x.name === name);
    if (!r) throw new Error(`no ${type} named ${name}; have ${ofType(e, type).map((x) => x.name).join(", ") || "none of that type"}`);
    return r;
}

/** A small DigitalOcean site's config map (the engine's form), for config checks. */
export const SMALL_SITE: Record<string, string> = {
    "cutover:site": "new",
    "cutover:provider": "digitalocean",
    "cutover:region": "ams3",
    "cutover:adminCidrs": JSON.stringify(["203.0.113.0/28"]),
    "cutover:network": JSON.stringify({ cidr: "10.20.0.0/16" }),
    "cutover:pools": JSON.stringify({ edge: { count: 1, size: "s" }, db: { count: 1, size: "m" } }),
};

/** The config problems parseSiteConfig reports for SMALL_SITE plus `extra` (none: []). */
export function configProblems(extra: Record<string, string>): string[] {
    try {
        parseSiteConfig({ ...SMALL_SITE, ...extra }, [], "new");
        return [];
    } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        return e.problems;
    }
}

/** An RDS replica plan (Adido's shape) for the renderer tests. */
export const RDS_PLAN: RdsReplicaPlan = {
    relay: { host: "new-worker-1", privateAddress: "10.30.1.17", port: 3306 },
    source: { site: "old", host: "rs-db-1", meshAddress: "10.250.1.110", port: 3306, flavor: "mysql" },
    rds: { endpoint: "cutover-new-1.abc.eu-west-1.rds.amazonaws.com", port: 3306 },
    caBundle: "-----BEGIN CERTIFICATE-----\nOLD-CA\n-----END CERTIFICATE-----",
};
