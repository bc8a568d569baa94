// MySQL/MariaDB replication renderers and the database config, checked directly; the
// database component under mocks.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, parseSiteConfig } from "../../components/config";
import { meshHostPattern, mysqlConf, mysqlPrimaryScript, mysqlReplicaScript, replicaWaitingScript, serverIdFor } from "../../components/database/render";
import { inboundRules } from "../../components/firewall/render";
import { Evaluation, evaluateStack } from "../../tools/offline";
import { named, plain, withoutSecrets } from "../helpers";

const server = { host: "new-db-1", engine: "mariadb" as const, serverId: serverIdFor("198.18.2.110"), meshAddress: "198.18.2.110", port: 3306 };
const source = { host: "old-db-1", meshAddress: "198.18.1.110", port: 3306 };

describe("MariaDB renderers", () => {
    it("derives server ids that differ across sites", () => {
        assert.notEqual(serverIdFor("198.18.1.110"), serverIdFor("198.18.2.110"));
    });
    it("limits the replication user to the mesh with MariaDB's netmask form", () => {
        assert.equal(meshHostPattern("198.18.0.0/15"), "198.18.0.0/255.254.0.0");
        assert.equal(meshHostPattern("10.250.0.0/16"), "10.250.0.0/255.255.0.0");
    });
    it("configures GTIDs, the binary log, TLS, and listening on loopback and the mesh only", () => {
        const conf = mysqlConf(server, true);
        for (const line of ["log_bin = mariadb-bin", "gtid_strict_mode = ON", "bind_address = 127.0.0.1,198.18.2.110", "ssl_cert = /etc/mysql/cutover/server.pem", "read_only = ON"]) assert.ok(conf.includes(line), line);
        assert.match(mysqlConf(server, false), /read_only = OFF/);
    });
    it("creates the replication user REQUIRE SSL, with the password from stdin only", () => {
        const s = mysqlPrimaryScript({ ...server, host: "old-db-1", meshAddress: "198.18.1.110" }, "198.18.0.0/15", "CA", "CERT");
        assert.match(s, /CREATE USER 'repl'@'198\.18\.0\.0\/255\.254\.0\.0' IDENTIFIED BY '\$repl_password' REQUIRE SSL/);
        assert.match(s, /IFS= read -r repl_password/);
        assert.doesNotMatch(s, /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    });
    it("reloads certificates online and restarts only for a config change", () => {
        const s = mysqlPrimaryScript(server, "198.18.0.0/15", "CA", "CERT");
        assert.match(s, /FLUSH SSL/);
        assert.match(s, /60-cutover\.cnf 644 config/);
        assert.match(s, /ca\.pem 644 tls/);
    });
    it("seeds by streaming one consistent snapshot into the local server, then replicates with GTIDs over verified TLS", () => {
        const s = mysqlReplicaScript(server, source, "CA", "CERT");
        assert.match(s, /mariadb-dump [^|]*--single-transaction --gtid --master-data=1[^|]*\\\n\s*\| mariadb/);
        assert.match(s, /MASTER_SSL=1, MASTER_SSL_CA='\/etc\/mysql\/cutover\/ca\.pem', MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_USE_GTID=slave_pos/);
        assert.match(s, /--defaults-extra-file="\$opts"/, "the password must not be on a command line");
        assert.doesNotMatch(s, /-p'?\$repl_password/);
    });
    it("waits, changing nothing, while the peer cannot be replicated from", () => {
        const s = replicaWaitingScript("new-db-1", "the peer stack is not deployed yet");
        assert.match(s, /database: replica waiting: the peer stack is not deployed yet/);
        assert.doesNotMatch(s, /mariadb/);
    });
    it("admits the database port from the mesh too, never from the internet", () => {
        const db = inboundRules({ role: "db", dbEngine: "mariadb", adminCidrs: ["203.0.113.0/28"], siteCidr: "10.20.0.0/16", publicSources: ["0.0.0.0/0"], meshCidr: "10.250.0.0/16" }).find((r) => r.port === 3306);
        assert.deepEqual(db?.sources, ["10.20.0.0/16", "10.250.0.0/16"]);
        const app = inboundRules({ role: "app", dbEngine: "mariadb", adminCidrs: ["203.0.113.0/28"], siteCidr: "10.20.0.0/16", publicSources: ["0.0.0.0/0"], meshCidr: "10.250.0.0/16" }).find((r) => r.port === 8080);
        assert.deepEqual(app?.sources, ["10.20.0.0/16"], "only replication ports are open to the other site");
    });
});

describe("database config", () => {
    const base = {
        "cutover:site": "new",
        "cutover:provider": "digitalocean",
        "cutover:region": "ams3",
        "cutover:adminCidrs": JSON.stringify(["203.0.113.0/28"]),
        "cutover:network": JSON.stringify({ cidr: "10.20.0.0/16" }),
        "cutover:pools": JSON.stringify({ edge: { count: 1, size: "s" }, db: { count: 1, size: "m" } }),
    };
    const problems = (extra: Record<string, string>) => {
        try {
            parseSiteConfig({ ...base, ...extra }, [], "new");
            return [];
        } catch (e) {
            assert.ok(e instanceof ConfigError);
            return e.problems;
        }
    };
    it("needs a peer and a mesh for a replica", () => {
        const found = problems({ "cutover:database": JSON.stringify({ engine: "mariadb", phase: "replica" }) });
        assert.ok(found.some((p) => p.startsWith('cutover:database.phase: "replica" is not allowed without cutover:peer')));
        assert.ok(found.some((p) => p.startsWith('cutover:database.phase: "replica" is not allowed without cutover:mesh')));
    });
    it("says plainly that PostgreSQL does not replicate yet", () => {
        const found = problems({ "cutover:database": JSON.stringify({ engine: "postgres", phase: "replica" }), "cutover:peer": "o/cutover/old", "cutover:mesh": JSON.stringify({ cidr: "10.250.0.0/16", siteRange: "10.250.2.0/24" }) });
        assert.deepEqual(found, ['cutover:database.phase: "replica" is not allowed with engine postgres yet: only mysql and mariadb replicate in this version']);
    });
    it("rejects an unknown phase", () => {
        assert.ok(problems({ "cutover:database": JSON.stringify({ engine: "mariadb", phase: "leader" }) }).some((p) => p.startsWith('cutover:database.phase: "leader" is not one of primary, replica')));
    });
});

describe("database component under mocks", () => {
    let oldSite: Evaluation;
    let newSite: Evaluation;
    before(async () => {
        const r = await evaluateStack({ stack: "new" });
        newSite = r.main;
        oldSite = r.peer!;
        assert.equal(newSite.error, undefined, newSite.error?.message);
    });
    it("publishes the primary's CA and replication user, with the password secret", () => {
        const db = oldSite.outputs.db as Record<string, unknown>;
        const shown = withoutSecrets(db) as any;
        assert.match(shown.caCert, /^-----BEGIN CERTIFICATE-----/);
        assert.equal(shown.replication.user, "repl");
        assert.equal(shown.replication.password, "[secret]");
        assert.equal(shown.phase, "primary");
    });
    it("signs the server certificate for the database host's mesh address", () => {
        const req = named(newSite, "tls:index/certRequest:CertRequest", "new-db-server");
        assert.deepEqual(plain(req.inputs).ipAddresses, ["10.250.2.110", "127.0.0.1"]);
    });
    it("passes the password and the key to the host on stdin, as a secret", () => {
        const step = named(newSite, "command:remote:Command", "new-db-new-db-1");
        assert.equal(withoutSecrets(step.inputs.stdin), "[secret]");
    });
});
