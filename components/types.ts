import * as pulumi from "@pulumi/pulumi";

/** What a host does. Firewall rules, services and runbook steps follow from the role. */
export const ROLES = ["edge", "app", "worker", "db", "cache"] as const;
export type Role = (typeof ROLES)[number];

export const PROVIDERS = ["digitalocean", "aws", "existing"] as const;
export type Provider = (typeof PROVIDERS)[number];

export const DB_ENGINES = ["mysql", "mariadb", "postgres"] as const;
export type DbEngine = (typeof DB_ENGINES)[number];

/**
 * A site's database in the migration: `primary` takes the writes; `replica` copies the
 * peer's primary; `dual-primary` (MySQL/MariaDB) takes writes and replicates both ways;
 * `detached` keeps no tie to the peer site.
 */
export const DB_PHASES = ["primary", "replica", "dual-primary", "detached"] as const;
export type DbPhase = (typeof DB_PHASES)[number];
export const CACHE_PHASES = ["primary", "replica", "detached"] as const;
export type CachePhase = (typeof CACHE_PHASES)[number];

/**
 * How the program reaches a host over SSH (the command provider's connection). Fields
 * are separate inputs so only the key is secret and a preview still shows the address.
 */
export interface SshConnection {
    host: pulumi.Input<string>;
    port: number;
    user: string;
    privateKey: pulumi.Input<string>;
    /** Retries while a host is still booting (pulumi/pulumi-command#1238). */
    dialErrorLimit: number;
    perDialTimeout: number;
    proxy?: { host: string; port: number; user: string; privateKey: pulumi.Input<string> };
}

/**
 * One host of a site, whatever created it. Everything above the host layer works
 * on this type and never asks which provider made the host.
 */
export interface Host {
    name: string;
    site: string;
    role: Role;
    publicAddress: pulumi.Output<string>;
    privateAddress: pulumi.Output<string>;
    connection: SshConnection;
}

/** Where DNS should point for this site: addresses (A/AAAA) or a hostname (CNAME). */
export interface Edge {
    kind: "addresses" | "hostname";
    addresses: string[];
    hostname: string;
}
