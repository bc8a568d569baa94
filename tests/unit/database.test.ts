// MySQL/MariaDB replication renderers and the database config, checked directly; the
// database component under mocks.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseSiteConfig } from "../../components/config";
import { autoIncrementFor, meshHostPattern, mysqlConf, mysqlPhaseSettings, mysqlScript, serverIdFor, waitingScript } from "../../components/database/mysql";
import { pgConf, pgHbaBlock, pgScript, primaryConninfo } from "../../components/database/postgres";
import { redisConf, redisRoleConf, redisScript, stunnelConf } from "../../components/database/redis";
import { inboundRules } from "../../components/firewall/render";
import { Evaluation, evaluateStack } from "../../tools/offline";
import { SMALL_SITE, configProblems, named, ofType, plain, withoutSecrets } from "../helpers";

const server = { host: "new-db-1", flavor: "mariadb" as const, serverId: serverIdFor("198.18.2.110"), meshAddress: "198.18.2.110", port: 3306 };
const source = { host: "old-db-1", meshAddress: "198.18.1.110", port: 3306 };
const tlsFiles = { meshCidr: "198.18.0.0/15", caBundle: "CA", serverCert: "CERT" };

describe("MySQL/MariaDB renderers", () => {
    it("derives server ids that differ across sites", () => {
        assert.notEqual(serverIdFor("198.18.1.110"), serverIdFor("198.18.2.110"));
    });
    it("limits the replication user to the mesh with the netmask form", () => {
        assert.equal(meshHostPattern("198.18.0.0/15"), "198.18.0.0/255.254.0.0");
        assert.equal(meshHostPattern("10.250.0.0/16"), "10.250.0.0/255.255.0.0");
    });
    it("configures GTIDs per flavour, the binary log, TLS, and listening on loopback and the mesh only", () => {
        const conf = mysqlConf(server);
        for (const line of ["[mariadbd]", "log_bin = mariadb-bin", "gtid_strict_mode = ON", `gtid_domain_id = ${server.serverId}`, "bind_address = 127.0.0.1,198.18.2.110", "ssl_cert = /etc/mysql/cutover/server.pem"]) assert.ok(conf.includes(line), line);
        const mysql = mysqlConf({ ...server, flavor: "mysql" });
        for (const line of ["[mysqld]", "gtid_mode = ON", "enforce_gtid_consistency = ON"]) assert.ok(mysql.includes(line), line);
        assert.doesNotMatch(mysql, /gtid_strict_mode|gtid_domain_id/);
    });
    it("makes only a replica read-only, and spaces keys only in dual-primary", () => {
        assert.equal(mysqlPhaseSettings({ phase: "replica" }).read_only, "ON");
        for (const phase of ["primary", "dual-primary", "detached"] as const) assert.equal(mysqlPhaseSettings({ phase, autoIncrement: { increment: 2, offset: 2 } }).read_only, "OFF", phase);
        assert.deepEqual(mysqlPhaseSettings({ phase: "dual-primary", autoIncrement: { increment: 2, offset: 2 } }), { read_only: "OFF", event_scheduler: "ON", auto_increment_increment: "2", auto_increment_offset: "2" });
        // Spaced before dual-primary begins: a pooled session keeps the values it connected with.
        for (const phase of ["primary", "replica"] as const) assert.equal(mysqlPhaseSettings({ phase, autoIncrement: { increment: 2, offset: 2 } }).auto_increment_offset, "2", phase);
        assert.equal(mysqlPhaseSettings({ phase: "primary" }).auto_increment_increment, "1", "no peer known yet");
        assert.equal(mysqlPhaseSettings({ phase: "detached", autoIncrement: { increment: 2, offset: 2 } }).auto_increment_increment, "1");
    });
    it("gives the two sites of a dual-primary pair different key offsets, whichever asks", () => {
        const a = serverIdFor("198.18.1.110");
        const b = serverIdFor("198.18.2.110");
        const fromA = autoIncrementFor(a, b);
        const fromB = autoIncrementFor(b, a);
        assert.equal(fromA.increment, 2);
        assert.equal(fromB.increment, 2);
        assert.notEqual(fromA.offset, fromB.offset);
    });
    it("applies phase settings online with SET GLOBAL, never by a restart", () => {
        const s = mysqlScript(server, { ...tlsFiles, phase: "dual-primary", source, autoIncrement: { increment: 2, offset: 2 } });
        assert.match(s, /SET GLOBAL auto_increment_increment = 2/);
        assert.match(s, /SET GLOBAL read_only = OFF/);
        assert.match(s, /61-cutover-phase\.cnf 644 root:root runtime/);
        assert.match(s, /60-cutover\.cnf 644 root:root config/);
    });
    it("creates the replication user REQUIRE SSL, kept out of the binary log, with the password from stdin only", () => {
        const s = mysqlScript({ ...server, host: "old-db-1", meshAddress: "198.18.1.110" }, { ...tlsFiles, phase: "primary" });
        assert.match(s, /local_sql "CREATE USER 'repl'@'198\.18\.0\.0\/255\.254\.0\.0' IDENTIFIED BY '\$repl_password' REQUIRE SSL"/);
        assert.match(s, /sql_log_bin=0/);
        assert.match(s, /repl_password=\$\(secret replication-password\)/);
        assert.doesNotMatch(s, /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    });
    it("reloads certificates online: FLUSH SSL for MariaDB, ALTER INSTANCE RELOAD TLS for MySQL", () => {
        assert.match(mysqlScript(server, { ...tlsFiles, phase: "primary" }), /FLUSH SSL/);
        assert.match(mysqlScript({ ...server, flavor: "mysql" }, { ...tlsFiles, phase: "primary" }), /ALTER INSTANCE RELOAD TLS/);
    });
    it("MariaDB: seeds by streaming one consistent snapshot outside the binary log, then CHANGE MASTER with GTIDs over verified TLS", () => {
        const s = mysqlScript(server, { ...tlsFiles, phase: "replica", source });
        assert.match(s, /echo "SET SESSION sql_log_bin=0;"; mariadb-dump [\s\S]*?--single-transaction --gtid --master-data=1[\s\S]*?\} \| mariadb \|\| fail/);
        assert.match(s, /CHANGE MASTER TO MASTER_HOST='198\.18\.1\.110', [^"]*MASTER_SSL=1, MASTER_SSL_CA='\/etc\/mysql\/cutover\/ca\.pem', MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_USE_GTID=slave_pos/);
        assert.match(s, /--defaults-extra-file="\$opts"/, "the password must not be on a command line");
        assert.doesNotMatch(s, /-p'?\$(repl|peer)_password/);
    });
    it("MySQL 8: CHANGE REPLICATION SOURCE TO with auto-positioning, mysqldump with the GTID set", () => {
        const s = mysqlScript({ ...server, flavor: "mysql" }, { ...tlsFiles, phase: "replica", source });
        assert.match(s, /CHANGE REPLICATION SOURCE TO SOURCE_HOST='198\.18\.1\.110', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='\$peer_password', SOURCE_SSL=1, [^"]*SOURCE_SSL_VERIFY_SERVER_CERT=1, SOURCE_AUTO_POSITION=1/);
        assert.match(s, /mysqldump [\s\S]*?--single-transaction --set-gtid-purged=ON --source-data=1/);
        assert.match(s, /START REPLICA/);
        assert.match(s, /SHOW REPLICA STATUS/);
        assert.doesNotMatch(s, /MASTER_|SLAVE STATUS|START SLAVE|gtid_slave_pos/);
    });
    it("attaches a server that already holds data without seeding it again", () => {
        const s = mysqlScript(server, { ...tlsFiles, phase: "replica", source });
        assert.match(s, /if \[ -z "\$\(sql "\$user_dbs"\)" \]; then/);
        assert.match(s, /SET GLOBAL gtid_slave_pos=@@gtid_current_pos/);
    });
    it("a primary stops copying the peer (promotion); detached also drops the peer's account", () => {
        assert.match(mysqlScript(server, { ...tlsFiles, phase: "primary" }), /STOP SLAVE; RESET SLAVE ALL/);
        const d = mysqlScript(server, { ...tlsFiles, phase: "detached" });
        assert.match(d, /DROP USER IF EXISTS 'repl'/);
        assert.doesNotMatch(d, /CREATE USER/);
    });
    it("waits, changing nothing, while the peer cannot be replicated from", () => {
        const s = waitingScript("database", "new-db-1", "the peer stack is not deployed yet");
        assert.match(s, /database: waiting: the peer stack is not deployed yet/);
        assert.doesNotMatch(s, /mariadb|psql|secret/);
    });
    it("admits replication ports (and the apps, for the other site's edge) from the mesh too, never from the internet", () => {
        const base = { dbEngine: "mariadb" as const, adminCidrs: ["203.0.113.0/28"], siteCidr: "10.20.0.0/16", publicSources: ["0.0.0.0/0"], meshCidr: "10.250.0.0/16" };
        assert.deepEqual(inboundRules({ ...base, role: "db" }).find((r) => r.port === 3306)?.sources, ["10.20.0.0/16", "10.250.0.0/16"]);
        assert.deepEqual(inboundRules({ ...base, role: "app" }).find((r) => r.port === 8080)?.sources, ["10.20.0.0/16", "10.250.0.0/16"]);
        assert.equal(inboundRules({ ...base, role: "edge" }).find((r) => r.port === 80)?.sources.includes("10.250.0.0/16"), false, "the edge takes clients, not the mesh");
        const cache = inboundRules({ ...base, role: "cache" });
        assert.deepEqual(cache.find((r) => r.port === 6379)?.sources, ["10.20.0.0/16"], "Redis itself is reached across sites only through stunnel");
        assert.deepEqual(cache.find((r) => r.port === 6380)?.sources, ["10.20.0.0/16", "10.250.0.0/16"]);
        assert.equal(inboundRules({ ...base, role: "db" }).find((r) => r.port === 6380), undefined);
        assert.ok(inboundRules({ ...base, role: "db", cacheOnDb: true }).some((r) => r.port === 6380));
    });
});

describe("PostgreSQL renderers", () => {
    const pg = { host: "new-db-1", meshAddress: "198.18.2.110", port: 5432 };
    const plan = { ...tlsFiles, clientCert: "CLIENT" };
    it("streams WAL over TLS, on loopback and the mesh only", () => {
        const conf = pgConf(pg);
        for (const line of ["listen_addresses = '127.0.0.1,198.18.2.110'", "wal_level = replica", "ssl = on", "ssl_ca_file = '/etc/postgresql/cutover/ca.pem'"]) assert.ok(conf.includes(line), line);
    });
    it("admits replication only from mesh addresses, over TLS, with a client certificate", () => {
        const hba = pgHbaBlock("198.18.0.0/15").split("\n").filter((l) => l && !l.startsWith("#"));
        assert.deepEqual(hba[0].split(/\s+/), ["hostssl", "replication", "replicator", "198.18.0.0/15", "cert"]);
        assert.ok(hba.slice(1).every((l) => l.endsWith("reject")), "everything else from the mesh is rejected");
    });
    it("connects the replica with sslmode=verify-full and its client certificate", () => {
        const c = primaryConninfo("new-db-1", { host: "old-db-1", meshAddress: "198.18.1.110", port: 5432 });
        for (const part of ["host=198.18.1.110", "user=replicator", "sslmode=verify-full", "sslcert=/etc/postgresql/cutover/replication.pem", "application_name=new_db_1"]) assert.ok(c.split(" ").includes(part), part);
    });
    it("builds the replica with pg_basebackup beside the old data directory, refusing to replace a cluster with databases", () => {
        const s = pgScript(pg, { ...plan, phase: "replica", source: { host: "old-db-1", meshAddress: "198.18.1.110", port: 5432 } });
        assert.match(s, /pg_basebackup -D "\$seed" -X stream -R --checkpoint=fast/);
        assert.match(s, /holds \$user_dbs database\(s\)/);
        assert.ok(s.indexOf("pg_basebackup -D") < s.indexOf('mv "$data" "$data.cutover-previous"'), "the old data is moved only after the copy succeeded");
    });
    it("promotes with pg_promote() and creates the replication role without a password", () => {
        const s = pgScript(pg, { ...plan, phase: "primary" });
        assert.match(s, /pg_promote\(true, 60\)/);
        assert.match(s, /CREATE ROLE replicator WITH REPLICATION LOGIN"/);
        assert.doesNotMatch(s, /PASSWORD/);
        assert.match(pgScript(pg, { ...plan, phase: "detached" }), /DROP ROLE replicator/);
    });
    it("restarts only when a setting needs it (pending_restart), otherwise reloads", () => {
        const s = pgScript(pg, { ...plan, phase: "primary" });
        assert.match(s, /pending_restart/);
        assert.match(s, /cluster reload/);
    });
});

describe("Redis renderers", () => {
    const r = { host: "new-db-1", meshAddress: "198.18.2.110", privateAddress: "198.51.100.20" };
    const src = { host: "old-db-1", meshAddress: "198.18.1.110" };
    const plan = { caBundle: "CA", serverCert: "CERT", clientCert: "CLIENT" };
    it("binds Redis to loopback and the site network, never the mesh", () => {
        const conf = redisConf(r);
        assert.match(conf, /^bind 127\.0\.0\.1 198\.51\.100\.20$/m);
        assert.doesNotMatch(conf, /198\.18\./);
        assert.doesNotMatch(conf, /requirepass/, "passwords live in a file written from stdin");
    });
    it("a restarted Redis comes back in the role the cache step or the runbook gave it", () => {
        assert.match(redisRoleConf("replica"), /^replicaof 127\.0\.0\.1 6390$/m);
        assert.doesNotMatch(redisRoleConf("primary"), /^replicaof/m);
        assert.match(redisConf(r), /^include \/etc\/redis\/cutover-role\.conf$/m);
        assert.match(redisScript(r, { ...plan, phase: "replica", source: src }), /^replicaof 127\.0\.0\.1 6390$/m);
        assert.doesNotMatch(redisScript(r, { ...plan, phase: "primary" }), /^replicaof/m);
    });
    it("after a cutover the runbook's role wins over cache.phase; detached clears it", () => {
        for (const phase of ["primary", "replica"] as const) {
            const s = redisScript(r, { ...plan, phase, source: phase === "replica" ? src : undefined });
            const guard = s.indexOf("/var/lib/cutover/cache-role");
            assert.ok(guard > 0 && guard < s.indexOf("put /etc/redis/cutover.conf"), `${phase}: the guard must come before any file is written`);
            assert.match(s, new RegExp(`"\\$runbook_role" != ${phase}`));
        }
        assert.match(redisScript(r, { ...plan, phase: "detached" }), /rm -f \/var\/lib\/cutover\/cache-role/);
    });
    it("stunnel requires a client certificate on the server side and verifies the source's address on the client side", () => {
        const conf = stunnelConf(r, { phase: "replica", source: src });
        const server = conf.slice(conf.indexOf("[redis-tls]"), conf.indexOf("[redis-replication]"));
        const client = conf.slice(conf.indexOf("[redis-replication]"));
        assert.match(server, /accept = 198\.18\.2\.110:6380/);
        assert.match(server, /requireCert = yes/);
        assert.match(server, /verifyChain = yes/);
        assert.match(client, /client = yes/);
        assert.match(client, /connect = 198\.18\.1\.110:6380/);
        assert.match(client, /checkIP = 198\.18\.1\.110/);
        assert.match(client, /cert = \/etc\/stunnel\/cutover\/client\.pem/);
        assert.doesNotMatch(stunnelConf(r, { phase: "detached" }), /\[redis-tls\]/);
    });
    it("replicates with REPLICAOF through the tunnel and promotes with REPLICAOF NO ONE, never restarting Redis", () => {
        assert.match(redisScript(r, { ...plan, phase: "replica", source: src }), /REPLICAOF 127\.0\.0\.1 6390/);
        const p = redisScript(r, { ...plan, phase: "primary" });
        assert.match(p, /REPLICAOF NO ONE/);
        assert.match(p, /CONFIG SET requirepass/);
        assert.doesNotMatch(p, /systemctl restart|redis-cli shutdown/i);
        assert.match(p, /REDISCLI_AUTH=/, "the password never goes on a command line");
    });
});

describe("database config", () => {
    const problems = configProblems;
    it("needs a peer and a mesh for a replica", () => {
        const found = problems({ "cutover:database": JSON.stringify({ engine: "mariadb", phase: "replica" }) });
        assert.ok(found.some((p) => p.startsWith('cutover:database.phase: "replica" is not allowed without cutover:peer')));
        assert.ok(found.some((p) => p.startsWith('cutover:database.phase: "replica" is not allowed without cutover:mesh')));
        assert.ok(problems({ "cutover:database": JSON.stringify({ engine: "mariadb", phase: "dual-primary" }) }).some((p) => p.startsWith('cutover:database.phase: "dual-primary" is not allowed without cutover:peer')));
    });
    const meshed = { "cutover:peer": "o/cutover/old", "cutover:mesh": JSON.stringify({ cidr: "10.250.0.0/16", siteRange: "10.250.2.0/24" }) };
    it("accepts a PostgreSQL replica, refuses PostgreSQL dual-primary", () => {
        assert.deepEqual(problems({ ...meshed, "cutover:database": JSON.stringify({ engine: "postgres", phase: "replica" }) }), []);
        assert.deepEqual(problems({ ...meshed, "cutover:database": JSON.stringify({ engine: "postgres", phase: "dual-primary" }) }), [
            'cutover:database.phase: "dual-primary" is not allowed with engine postgres: streaming replication has one writer; use replica, then primary',
        ]);
    });
    it("refuses detached while the stack still reads its peer, naming the key and the way out", () => {
        assert.deepEqual(problems({ ...meshed, "cutover:database": JSON.stringify({ engine: "mariadb", phase: "detached" }) }), [
            'cutover:database.phase: "detached" is not allowed with cutover:peer "o/cutover/old": detached removes every tie to the peer site; remove cutover:peer in the same change',
        ]);
        assert.ok(problems({ ...meshed, "cutover:cache": JSON.stringify({ engine: "redis", phase: "detached" }) }).some((p) => p.startsWith('cutover:cache.phase: "detached" is not allowed with cutover:peer')));
        assert.deepEqual(problems({ "cutover:mesh": meshed["cutover:mesh"], "cutover:database": JSON.stringify({ engine: "mariadb", phase: "detached" }) }), []);
    });
    it("runs Redis on the cache host, or on the db host when there is none", () => {
        const onDb = parseSiteConfig({ ...SMALL_SITE, ...meshed, "cutover:cache": JSON.stringify({ engine: "redis", phase: "replica" }) }, [], "new");
        assert.equal(onDb.cache?.host, "new-db-1");
        const pools = JSON.stringify({ edge: { count: 1, size: "s" }, db: { count: 1, size: "m" }, cache: { count: 2, size: "s" } });
        assert.equal(parseSiteConfig({ ...SMALL_SITE, ...meshed, "cutover:pools": pools, "cutover:cache": JSON.stringify({ engine: "redis" }) }, [], "new").cache?.host, "new-cache-1");
        const nowhere = JSON.stringify({ edge: { count: 1, size: "s" } });
        assert.ok(problems({ "cutover:pools": nowhere, "cutover:cache": JSON.stringify({ engine: "redis" }) }).some((p) => p.startsWith('cutover:cache: {"engine":"redis"} is not allowed: the site has no cache or db host')));
        assert.ok(problems({ "cutover:cache": JSON.stringify({ engine: "redis", phase: "replica" }) }).some((p) => p.startsWith('cutover:cache.phase: "replica" is not allowed without cutover:peer')));
    });
    it("rejects an unknown phase", () => {
        assert.ok(problems({ "cutover:database": JSON.stringify({ engine: "mariadb", phase: "leader" }) }).some((p) => p.startsWith('cutover:database.phase: "leader" is not one of primary, replica, dual-primary, detached')));
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
    it("reports the replica's state in the db output, and one CA per site signs every certificate", () => {
        const db = withoutSecrets(newSite.outputs.db) as any;
        assert.deepEqual(Object.keys(db.state).sort(), ["lag", "position", "role"]);
        assert.equal(ofType(newSite, "tls:index/selfSignedCert:SelfSignedCert").length, 1);
    });
    it("passes the passwords and keys to the host on stdin, as a secret", () => {
        const step = named(newSite, "command:remote:Command", "new-db-new-db-1");
        assert.equal(withoutSecrets(step.inputs.stdin), "[secret]");
    });
});
