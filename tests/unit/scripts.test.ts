// Every host script the renderers produce is valid bash (a syntax error would only show
// on a host, halfway through a deploy).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import { probeScript } from "../../components/app/probe";
import { mysqlScript, waitingScript } from "../../components/database/mysql";
import { pgScript } from "../../components/database/postgres";
import { redisScript } from "../../components/database/redis";
import { edgeScript } from "../../components/edge/render";
import { hostFirewallScript, inboundRules } from "../../components/firewall/render";
import { meshScript } from "../../components/mesh/render";
import { authorizePeerScript } from "../../components/hosts/render";
import { Flip, precheckScript, resumeScript, switchScript } from "../../components/runbook/render";
import { PgFlip, pgFreezeScript, pgPrecheckScript, pgResumeScript, pgSwitchScript } from "../../components/runbook/postgres";
import { backupJob, backupScript, restoreJob } from "../../components/backup/render";
import { mediaSyncScript } from "../../components/media/render";
import { inventoryScript } from "../../components/inventory/render";
import { dataVolumeScript } from "../../components/volume/render";
import { RDS_PLAN } from "../helpers";
import { rdsReplicaScript, rdsSwitchScript } from "../../components/database/rds";

const publicKey = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" }) as string;
const member = { node: "old_db_1", host: "old-db-1", site: "old", publicAddress: "192.0.2.20", port: 655, meshAddress: "198.18.1.110", publicKey };
const source = { host: "old-db-1", meshAddress: "198.18.1.110", port: 3306 };
const tls = { meshCidr: "198.18.0.0/15", caBundle: "CA", serverCert: "CERT" };
const db = { host: "new-db-1", meshAddress: "198.18.2.110" };

/** Every runbook step, both strategies and flavours, with and without work to do. */
function runbookScripts(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const flavor of ["mariadb", "mysql"] as const) {
        for (const [strategy, cache] of [["freeze", false], ["freeze", true], ["dual-primary", false]] as const) {
            const f: Flip = {
                from: { site: "old", host: "old-db-1", meshAddress: "198.18.1.110", port: 3306 },
                to: { site: "new", host: "new-db-1", meshAddress: "198.18.2.110", port: 3306 },
                edges: [{ name: "old-edge-1", meshAddress: "198.18.1.10" }, { name: "new-edge-1", meshAddress: "198.18.2.10" }],
                flavor,
                settings: { strategy, freezeMs: 3000, catchupMs: 1500, maxLagSeconds: 10, postponeFile: "/etc/cutover/postpone", postponeMinutes: 60, holdMarginMs: 2000, precheck: "test -e /etc/ok", validate: "curl -fs http://127.0.0.1/", parity: ["shop.orders"], attempt: 2 },
                cache,
            };
            const k = `runbook ${flavor} ${strategy}${cache ? " + redis" : ""}`;
            out[`${k} precheck`] = precheckScript(f);
            for (const needed of [true, false]) {
                const n = needed ? "needed" : "nothing to do";
                out[`${k} switch (${n})`] = switchScript(f, needed);
                out[`${k} resume (${n})`] = resumeScript(f, needed, { frozen: "1795398386482" });
            }
        }
    }
    for (const cache of [false, true]) {
        const f: PgFlip = {
            from: { site: "old", host: "old-db-1", meshAddress: "198.18.1.110", port: 5432 },
            to: { site: "new", host: "new-db-1", meshAddress: "198.18.2.110", port: 5432 },
            edges: [{ name: "old-edge-1", meshAddress: "198.18.1.10" }],
            settings: { strategy: "freeze", freezeMs: 5000, catchupMs: 3000, maxLagSeconds: 10, postponeFile: "/etc/cutover/postpone", postponeMinutes: 60, holdMarginMs: 2000, validate: "true", parity: [], attempt: 1 },
            cache,
        };
        const k = `runbook postgres${cache ? " + redis" : ""}`;
        out[`${k} precheck`] = pgPrecheckScript(f);
        for (const needed of [true, false]) {
            const n = needed ? "needed" : "nothing to do";
            out[`${k} freeze (${n})`] = pgFreezeScript(f, needed);
            out[`${k} switch (${n})`] = pgSwitchScript(f, needed, { stoppedAt: "0/3000028", timeline: "1", deadline: "1795398386482" });
            out[`${k} resume (${n})`] = pgResumeScript(f, needed, { held: "1795398386000" });
        }
    }
    return out;
}

const scripts: Record<string, string> = {
    firewall: hostFirewallScript("new-db-1", inboundRules({ role: "db", dbEngine: "mariadb", adminCidrs: ["203.0.113.0/28"], siteCidr: "198.51.100.0/24", publicSources: ["0.0.0.0/0"], meshCidr: "198.18.0.0/15", cacheOnDb: true })),
    mesh: meshScript(member, [member], [member.node], "198.18.0.0/15"),
    waiting: waitingScript("database", "new-db-1", "the peer stack is not deployed yet"),
    ...Object.fromEntries((["primary", "replica", "dual-primary", "detached"] as const).flatMap((phase) =>
        (["mariadb", "mysql"] as const).map((flavor) => [`${flavor} ${phase}`, mysqlScript({ ...db, flavor, serverId: 626, port: 3306 }, { ...tls, phase, source: phase === "replica" || phase === "dual-primary" ? source : undefined, autoIncrement: { increment: 2, offset: 2 }, probe: true })]))),
    ...Object.fromEntries((["primary", "replica", "detached"] as const).map((phase) => [`postgres ${phase}`, pgScript({ ...db, port: 5432 }, { ...tls, clientCert: "CLIENT", phase, source: phase === "replica" ? { ...source, port: 5432 } : undefined })])),
    ...Object.fromEntries((["primary", "replica", "detached"] as const).map((phase) => [`redis ${phase}`, redisScript({ ...db, privateAddress: "198.51.100.20" }, { caBundle: "CA", serverCert: "CERT", clientCert: "CLIENT", phase, source: phase === "replica" ? source : undefined })])),
    edge: edgeScript({ host: "new-edge-1", bind: ":80", live: "old", sites: { old: [{ name: "old-app-1", address: "198.18.1.30", port: 8080 }], new: [] } }),
    probe: probeScript({ site: "new", host: "new-app-1", db: { address: "198.18.2.110", port: 3306, engine: "mariadb" } }),
    "probe postgres": probeScript({ site: "new", host: "new-app-1", db: { address: "198.18.2.110", port: 5432, engine: "postgres" } }, { caCert: "CA", clientCert: "CERT" }),
    ...runbookScripts(),
    "authorize peer": authorizePeerScript("old-db-1", "new", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvZ new-deploy"),
    "authorize no peer": authorizePeerScript("old-db-1", "new", undefined),
    ...Object.fromEntries((["mariadb", "mysql", "postgres"] as const).flatMap((engine) => {
        const plan = { engine, schedule: "30 2 * * *", target: { type: "s3" as const, provider: "AWS" as const, region: "eu-west-1", bucket: "cutover-new-backup-1", path: "" } };
        return [[`backup ${engine}`, backupScript("new-db-1", plan)], [`backup job ${engine}`, backupJob("new-db-1", plan)], [`restore ${engine}`, restoreJob(plan)]];
    })),
    "backup to sftp": backupScript("new-db-1", { engine: "mariadb", schedule: "30 2 * * *", target: { type: "sftp", host: "198.18.2.30", user: "root", port: 22, path: "/var/backups" } }),
    "media s3 -> sftp": mediaSyncScript("new-app-1", {
        source: { type: "s3", provider: "DigitalOcean", endpoint: "ams3.digitaloceanspaces.com", bucket: "old-media", path: "uploads" },
        target: { type: "sftp", host: "198.18.2.30", user: "root", port: 22, path: "/var/www/media" },
        transfers: 16, checkers: 32, retries: 5, lowLevelRetries: 10, run: 2,
        rewrite: { command: "wp search-replace \"$CUTOVER_MEDIA_FROM\" \"$CUTOVER_MEDIA_TO\"", from: "https://old.example/m/", to: "https://media.example.com/" },
    }),
    "data volume": dataVolumeScript({ host: "new-db-1", device: "/dev/disk/by-id/scsi-0DO_Volume_new-db-1-data", mountPoint: "/var/lib/mysql" }),
    "rds replica": rdsReplicaScript(RDS_PLAN),
    "rds switch to rds": rdsSwitchScript(RDS_PLAN, "old", "new", { strategy: "freeze", freezeMs: 10000, catchupMs: 8000, maxLagSeconds: 10, postponeFile: "/etc/cutover/postpone", postponeMinutes: 60, holdMarginMs: 2000, parity: [], attempt: 1 }),
    "rds switch back": rdsSwitchScript(RDS_PLAN, "new", "old", { strategy: "freeze", freezeMs: 10000, catchupMs: 8000, maxLagSeconds: 10, postponeFile: "/etc/cutover/postpone", postponeMinutes: 60, holdMarginMs: 2000, parity: [], attempt: 1 }),
};

describe("rendered host scripts", () => {
    for (const [name, script] of Object.entries(scripts)) {
        it(`${name}: bash accepts it and it stops on the first error`, () => {
            const r = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr);
            assert.match(script, /^#!\/bin\/bash\n[\s\S]*?set -euo pipefail/);
        });
    }
    it("inventory: bash accepts it; it reads on past a failing probe (it changes nothing)", () => {
        const script = inventoryScript("old-app-1");
        assert.equal(spawnSync("bash", ["-n"], { input: script, encoding: "utf8" }).status, 0);
        assert.match(script, /^#!\/bin\/bash\n[\s\S]*?set -uo pipefail/);
    });
});

// shellcheck's warnings that do not apply to rendered scripts, each with why:
const SHELLCHECK_EXCLUDED = [
    // Every script's header sets changed/started/restart/reload_tls for the parts that report them; not all parts are in every script.
    "SC2034",
];

/** The scripts' own windows (heredocs run as scripts of their own): checked like the rest. */
function embedded(script: string): string[] {
    return [...script.matchAll(/<<'CUTOVER_WINDOW'\n([\s\S]*?)\nCUTOVER_WINDOW\n/g)].map((m) => m[1]);
}

const shellcheck = spawnSync("bash", ["-c", "command -v shellcheck"]).status === 0;
describe("rendered host scripts under shellcheck", { skip: !shellcheck && process.env.CUTOVER_LAB_REQUIRED !== "1" && "shellcheck not installed (Debian package shellcheck; CI installs it)" }, () => {
    for (const [name, script] of Object.entries({ ...scripts, inventory: inventoryScript("old-app-1") })) {
        it(`${name}: no warning`, () => {
            for (const text of [script, ...embedded(script)]) {
                const r = spawnSync("shellcheck", ["-S", "warning", "-s", "bash", "-f", "gcc", "-e", SHELLCHECK_EXCLUDED.join(","), "-"], { input: text, encoding: "utf8" });
                assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
            }
        });
    }
});

/** Variables that hold a secret in the rendered scripts (read from stdin by `readSecrets`). */
const SECRET_VARIABLE = /\$\{?(peer_password|repl_password|admin_password|probe_password|password|dst_key|src_key|passphrase|server_key|client_key|secrets_in|cache_password)\b/;
/** Commands a secret may be an argument of: bash builtins, and the scripts' own functions that hand their argument to the client on stdin. */
const NO_ARGV = new Set(["printf", "echo", "[", "test", "local", "export", "sql", "local_sql"]);

/** A line's simple commands: split at | ; & outside quotes, and at each command substitution $( ... ). */
function simpleCommands(line: string): string[] {
    const out: string[] = [];
    let cur = "";
    let quote = "";
    for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (quote === "'") {
            cur += c;
            if (c === "'") quote = "";
        } else if (line.startsWith("$(", i)) {
            out.push(cur);
            cur = "";
            quote = "";
            i++;
        } else if (quote === "" && (c === "|" || c === ";" || c === "&" || c === ")")) {
            out.push(cur);
            cur = "";
        } else {
            if (c === "'" || c === '"') quote = quote === c ? "" : quote === "" ? c : quote;
            cur += c;
        }
    }
    return [...out, cur];
}

describe("no secret on a command line (every local user can read /proc/<pid>/cmdline)", () => {
    for (const [name, script] of Object.entries(scripts)) {
        it(`${name}: secrets reach programs on stdin or in files, never as arguments`, () => {
            const found: string[] = [];
            const viaFunction = new Set<string>();
            for (const line of script.split("\n")) {
                if (!SECRET_VARIABLE.test(line) || /^\s*#/.test(line)) continue;
                // Each simple command of the line that names a secret: what runs it?
                for (const part of simpleCommands(line)) {
                    // Environment assignments before a command are not its arguments.
                    const rest = part.trim().replace(/^(\w+\(\)\s*)?\{\s*/, "").replace(/^(\w+=("[^"]*"|'[^']*'|\S*)\s+)+/, "");
                    if (!SECRET_VARIABLE.test(rest) || /^\w+=\S*$/.test(rest)) continue;
                    const command = rest.split(/\s+/)[0];
                    if (!NO_ARGV.has(command)) found.push(line.trim());
                    else if (command === "sql" || command === "local_sql") viaFunction.add(command);
                }
            }
            assert.deepEqual([...new Set(found)], []);
            // The functions a secret was handed to really send their statement on stdin.
            for (const m of script.matchAll(/^(sql|local_sql)\(\) \{ (.*) \}$/gm)) {
                if (!viaFunction.has(m[1]) && !(m[1] === "sql" && viaFunction.has("local_sql"))) continue;
                assert.ok(/^printf '%s\\n' "\$1" \| /.test(m[2]) || /^sql "/.test(m[2]), `${m[1]}() passes its statement as an argument: ${m[2]}`);
            }
        });
    }
});
