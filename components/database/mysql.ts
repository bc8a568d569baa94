// MySQL/MariaDB replication across sites, over the mesh, with TLS: the server config and
// one ensure-script per phase. Secrets (the replication passwords, the server's private
// key) arrive on stdin, never in the script text.
import { DbPhase } from "../types";
import { PUT_FILE, installIfMissing, putTlsFiles, readSecrets, scriptHeader } from "../script";

export const DB_TLS_DIR = "/etc/mysql/cutover";
/** The role the last cutover gave this server ("primary" | "replica"), written by the runbook. */
export const ROLE_MARKER = "/var/lib/cutover/db-role";
export const REPL_USER = "repl";

export type MysqlFlavor = "mysql" | "mariadb";

/** What differs between MariaDB and MySQL 8: binaries, paths and replication SQL. */
export interface FlavorSpec {
    name: string;
    server: string;
    package: string;
    /** Makes the system tables in an empty /var/lib/mysql, as the package's install does. */
    initDb: string;
    client: string;
    admin: string;
    dump: string;
    service: string;
    confFile: string;
    section: string;
    /** Server settings that turn GTIDs on. */
    gtidConf: (s: MysqlServer) => string[];
    grants: string;
    /** What the runbook's switch needs on the other site's server: freeze it (read_only) with an event that ends the freeze, kept out of the binary log (sql_log_bin). */
    runbookGrants: string;
    reloadTls: string;
    changeSource: (src: MysqlSource, caPath: string) => string;
    startReplica: string;
    resetReplica: string;
    status: string;
    statusFields: { host: string; io: string; sql: string; ioError: string; sqlError: string; lag: string };
    /** The executed GTID set / binlog position, and the replica's applied position. */
    position: string;
    replicaPosition: string;
    /** Dump flags: one consistent snapshot that carries its GTID position. */
    dumpFlags: string;
    /** Set before loading a seed: the seed must not enter this server's own binary log. */
    seedPrelude: string;
    /** Seeding from a source without user databases: take over its position only. */
    positionOnly: string;
    /** Attaching to a source without seeding (data already there). */
    attachPrelude: string;
}

export const FLAVORS: Record<MysqlFlavor, FlavorSpec> = {
    mariadb: {
        name: "MariaDB",
        server: "mariadbd",
        package: "mariadb-server",
        initDb: "mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db --auth-root-authentication-method=socket",
        client: "mariadb",
        admin: "mariadb-admin",
        dump: "mariadb-dump",
        service: "mariadb",
        confFile: "/etc/mysql/mariadb.conf.d/60-cutover.cnf",
        section: "mariadbd",
        // Each site writes its own GTID domain, so two writers (dual-primary) never clash in strict mode.
        gtidConf: (s) => ["gtid_strict_mode = ON", `gtid_domain_id = ${s.serverId}`],
        grants: "REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER",
        runbookGrants: "READ_ONLY ADMIN, BINLOG ADMIN",
        reloadTls: "FLUSH SSL",
        changeSource: (src, ca) =>
            `CHANGE MASTER TO MASTER_HOST='${src.meshAddress}', MASTER_PORT=${src.port}, MASTER_USER='${REPL_USER}', MASTER_PASSWORD='$peer_password', MASTER_SSL=1, MASTER_SSL_CA='${ca}', MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_USE_GTID=slave_pos`,
        startReplica: "START SLAVE",
        resetReplica: "STOP SLAVE; RESET SLAVE ALL",
        status: "SHOW SLAVE STATUS",
        statusFields: { host: "Master_Host", io: "Slave_IO_Running", sql: "Slave_SQL_Running", ioError: "Last_IO_Error", sqlError: "Last_SQL_Error", lag: "Seconds_Behind_Master" },
        position: "SELECT @@gtid_binlog_pos",
        replicaPosition: "SELECT @@gtid_slave_pos",
        dumpFlags: "--single-transaction --gtid --master-data=1",
        seedPrelude: "SET SESSION sql_log_bin=0;",
        positionOnly: `sql "SET GLOBAL gtid_slave_pos='$(remote 'SELECT @@gtid_binlog_pos')'"`,
        // Everything this server already holds, including its own writes, counts as applied.
        attachPrelude: `sql "SET GLOBAL gtid_slave_pos=@@gtid_current_pos"`,
    },
    mysql: {
        name: "MySQL",
        server: "mysqld",
        package: "mysql-server",
        initDb: "mysqld --initialize-insecure --user=mysql --datadir=/var/lib/mysql",
        client: "mysql",
        admin: "mysqladmin",
        dump: "mysqldump",
        service: "mysql",
        confFile: "/etc/mysql/mysql.conf.d/60-cutover.cnf",
        section: "mysqld",
        gtidConf: () => ["gtid_mode = ON", "enforce_gtid_consistency = ON"],
        grants: "REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER",
        runbookGrants: "SYSTEM_VARIABLES_ADMIN, SESSION_VARIABLES_ADMIN",
        reloadTls: "ALTER INSTANCE RELOAD TLS",
        changeSource: (src, ca) =>
            `CHANGE REPLICATION SOURCE TO SOURCE_HOST='${src.meshAddress}', SOURCE_PORT=${src.port}, SOURCE_USER='${REPL_USER}', SOURCE_PASSWORD='$peer_password', SOURCE_SSL=1, SOURCE_SSL_CA='${ca}', SOURCE_SSL_VERIFY_SERVER_CERT=1, SOURCE_AUTO_POSITION=1`,
        startReplica: "START REPLICA",
        resetReplica: "STOP REPLICA; RESET REPLICA ALL",
        status: "SHOW REPLICA STATUS",
        statusFields: { host: "Source_Host", io: "Replica_IO_Running", sql: "Replica_SQL_Running", ioError: "Last_IO_Error", sqlError: "Last_SQL_Error", lag: "Seconds_Behind_Source" },
        position: "SELECT @@gtid_executed",
        replicaPosition: "SELECT @@gtid_executed",
        // --set-gtid-purged=ON makes the dump set gtid_purged and turn sql_log_bin off itself.
        dumpFlags: "--single-transaction --set-gtid-purged=ON --source-data=1",
        seedPrelude: "",
        positionOnly: `sql "RESET MASTER; SET GLOBAL gtid_purged='$(remote 'SELECT @@gtid_executed')'"`,
        // With auto-positioning the source sends what gtid_executed lacks: nothing to set.
        attachPrelude: ":",
    },
};

export interface MysqlServer {
    host: string;
    flavor: MysqlFlavor;
    serverId: number;
    /** Addresses the server listens on: loopback for the local app, the mesh address for the peer. */
    meshAddress: string;
    port: number;
    /** An adopted server: the addresses it listened on before (its apps connect there), kept. */
    keepAddresses?: string[];
}

/**
 * bind_address: loopback and the mesh, plus what an adopted server listened on. A wildcard
 * covers them all and cannot be mixed with single addresses.
 */
export function bindAddresses(s: Pick<MysqlServer, "meshAddress" | "keepAddresses">): string {
    const keep = s.keepAddresses ?? [];
    if (keep.some((a) => a === "*" || a === "::")) return "*";
    if (keep.includes("0.0.0.0")) return "0.0.0.0";
    return [...new Set(["127.0.0.1", s.meshAddress, ...keep])].join(",");
}

export interface MysqlSource {
    host: string;
    meshAddress: string;
    port: number;
}

export interface MysqlPlan {
    phase: DbPhase;
    meshCidr: string;
    /** PEM: this site's CA and (unless detached) the peer's. */
    caBundle: string;
    serverCert: string;
    /** The peer's server to replicate from (replica and dual-primary). */
    source?: MysqlSource;
    /** Each site mints keys of its own residue class (known once the peer's server is). */
    autoIncrement?: { increment: number; offset: number };
    /** The rehearsal probe app's account (password on stdin as "probe-password") and table. */
    probe?: boolean;
}

export const PROBE_USER = "probe";
export const PROBE_TABLE = "cutover_probe.writes";

/** A server id unique across both sites: from the host's mesh address. */
export function serverIdFor(meshAddress: string): number {
    const [, , c, d] = meshAddress.split(".").map(Number);
    return c * 256 + d;
}

/** Dual-primary key spacing: the site with the lower server id takes the odd keys. */
export function autoIncrementFor(own: number, peer: number): { increment: number; offset: number } {
    return { increment: 2, offset: own < peer ? 1 : 2 };
}

/** A network/netmask host pattern (both flavours accept it): the replication user only from the mesh. */
export function meshHostPattern(meshCidr: string): string {
    const [net, len] = meshCidr.split("/");
    const bits = Number(len);
    const mask = [0, 1, 2, 3].map((i) => (bits >= (i + 1) * 8 ? 255 : bits <= i * 8 ? 0 : 256 - 2 ** ((i + 1) * 8 - bits))).join(".");
    return `${net}/${mask}`;
}

/** Settings that need a restart to change: the binary log, GTIDs, addresses, TLS files. */
export function mysqlConf(s: MysqlServer): string {
    const f = FLAVORS[s.flavor];
    return `# Rendered by cutover: binary log with GTIDs, TLS, listening on loopback and the mesh.
[${f.section}]
server_id = ${s.serverId}
log_bin = ${s.flavor}-bin
binlog_format = ROW
log_slave_updates = ON
${f.gtidConf(s).join("\n")}
bind_address = ${bindAddresses(s)}
port = ${s.port}
# Accounts match addresses only; a reverse lookup per connection would stall clients where DNS is slow.
skip_name_resolve = ON
ssl_ca = ${DB_TLS_DIR}/ca.pem
ssl_cert = ${DB_TLS_DIR}/server.pem
ssl_key = ${DB_TLS_DIR}/server.key
`;
}

/**
 * Settings the phase decides; all dynamic, so a phase change never restarts the server. A
 * session keeps the auto_increment values it connected with: spacing set only when
 * dual-primary began left an app's pooled connections minting the other site's keys (the
 * rehearsal at 500 writes/s: a duplicate key stopped replication both ways). So the spacing
 * holds from the first run that knows the peer, in every phase but detached.
 */
export function mysqlPhaseSettings(plan: Pick<MysqlPlan, "phase" | "autoIncrement">): Record<string, string> {
    const ai = plan.phase !== "detached" && plan.autoIncrement ? plan.autoIncrement : { increment: 1, offset: 1 };
    return {
        // A replica takes no writes but replication's until it is promoted.
        read_only: plan.phase === "replica" ? "ON" : "OFF",
        // The runbook's freeze ends by an event at its deadline.
        event_scheduler: "ON",
        auto_increment_increment: String(ai.increment),
        auto_increment_offset: String(ai.offset),
    };
}

function phaseConf(s: MysqlServer, settings: Record<string, string>): string {
    return `# Rendered by cutover: this site's phase; applied online with SET GLOBAL.
[${FLAVORS[s.flavor].section}]
${Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join("\n")}
`;
}

/** Client flags for the other site's server: TLS, its certificate verified against the program's CAs. */
export function clientTls(flavor: MysqlFlavor): string {
    return `--ssl-ca=${DB_TLS_DIR}/ca.pem ${flavor === "mariadb" ? "--ssl --ssl-verify-server-cert" : "--ssl-mode=VERIFY_IDENTITY"}`;
}

/** Shell helpers on a database host: \`sql <statement>\` on the local server, \`replica_field <field>\` of its replica status (empty when not replicating). */
export function localSqlHelpers(f: FlavorSpec): string {
    // The statement goes on stdin (printf is a builtin): a password in it never reaches a command line.
    return `sql() { printf '%s\\n' "$1" | ${f.client} --batch --skip-column-names; }
replica_field() { ${f.client} -e "${f.status}\\G" | awk -F': ' -v k="$1" '{ sub(/^ +/, "", $1) } $1 == k { print $2 }'; }`;
}

/** The whole ensure-script of one phase. */
export function mysqlScript(s: MysqlServer, plan: MysqlPlan): string {
    const f = FLAVORS[s.flavor];
    const settings = mysqlPhaseSettings(plan);
    const who = `'${REPL_USER}'@'${meshHostPattern(plan.meshCidr)}'`;
    const fields = f.statusFields;
    const about = plan.source ? `${f.name} ${plan.phase} on ${s.host}, replicating from ${plan.source.host}` : `${f.name} ${plan.phase} on ${s.host}`;
    return `${scriptHeader("database", s.host, about)}
${installIfMissing(f.server, f.package)}
# A blank data volume mounted at /var/lib/mysql on an image that had the server installed
# already: no system tables. Initialized only when empty and the server is down.
if [ ! -d /var/lib/mysql/mysql ] && ! ${f.admin} ping >/dev/null 2>&1; then
    [ -z "$(ls -A /var/lib/mysql 2>/dev/null)" ] || fail "/var/lib/mysql holds files but no system tables (mysql/); not initializing over them"
    install -d -m 750 -o mysql -g mysql /var/lib/mysql
    init_out=$(${f.initDb} 2>&1) || fail "initializing the empty /var/lib/mysql failed: $(tail -n 3 <<< "$init_out" | tr '\\n' ' ')"
    changed=1
fi
${readSecrets({ "server-key": "server_key", "replication-password": "repl_password", ...(plan.source ? { "peer-password": "peer_password" } : {}), ...(plan.probe ? { "probe-password": "probe_password" } : {}) })}

${PUT_FILE}
${putTlsFiles(DB_TLS_DIR, "mysql:mysql", { "ca.pem": plan.caBundle, "server.pem": plan.serverCert }, { "server.key": "server_key" })}
put ${f.confFile} 644 root:root config <<'CUTOVER_CNF'
${mysqlConf(s).trim()}
CUTOVER_CNF
put ${f.confFile.replace("60-cutover", "61-cutover-phase")} 644 root:root runtime <<'CUTOVER_CNF'
${phaseConf(s, settings).trim()}
CUTOVER_CNF

svc() {
    if [ -d /run/systemd/system ]; then systemctl "$1" ${f.service}; else /etc/init.d/${f.service} "$1" >/dev/null; fi
}
errlog() { tail -n 5 /var/log/mysql/error.log 2>/dev/null || true; }
if ! ${f.admin} ping >/dev/null 2>&1; then
    svc start || fail "${f.service} did not start: $(errlog)"
    changed=1
elif [ "$restart" = 1 ]; then
    svc restart || fail "${f.service} did not restart: $(errlog)"
fi
for _ in $(seq 1 60); do ${f.admin} ping >/dev/null 2>&1 && break; sleep 0.5; done
${f.admin} ping >/dev/null 2>&1 || fail "${f.service} does not answer after 30 s: $(errlog)"
${localSqlHelpers(f)}
# Accounts are per site (each has its own password): kept out of the binary log.
local_sql() { sql "SET SESSION sql_log_bin=0; $1"; }
# New certificates or CA bundle (the peer's CA added): reloaded online, the server keeps serving.
if [ "$restart" = 0 ] && [ "$reload_tls" = 1 ]; then sql "${f.reloadTls}" || fail "${f.reloadTls} failed"; fi
${plan.probe ? probeAccount(meshHostPattern(plan.meshCidr)) : ""}
${roleGuard(f, plan.phase)}
${Object.entries(settings).map(([k, v]) => `[ "$(sql "SELECT @@GLOBAL.${k}")" = "${k === "event_scheduler" ? v : v === "ON" ? 1 : v === "OFF" ? 0 : v}" ] || { sql "SET GLOBAL ${k} = ${v}"; changed=1; }`).join("\n")}

${plan.phase === "detached" ? detachSteps(who) : sourceSteps(f, who)}
${plan.source ? attachSteps(s, f, plan.source) : `if [ -n "$(replica_field ${fields.host})" ]; then
    # Promoted: stop copying the peer (the peer now copies this site, or nothing).
    sql "${f.resetReplica}"
    changed=1
fi`}
${plan.probe && plan.phase !== "replica" && plan.phase !== "detached" ? `# Replicated (binlogged): the other site gets the table with the data.
sql "CREATE DATABASE IF NOT EXISTS cutover_probe; CREATE TABLE IF NOT EXISTS ${PROBE_TABLE} (id BIGINT AUTO_INCREMENT PRIMARY KEY, client VARCHAR(32) NOT NULL, seq INT NOT NULL, site VARCHAR(32) NOT NULL, host VARCHAR(64) NOT NULL, at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), KEY (client, seq))"` : ""}
echo "database: role=${plan.phase} position=$(sql '${plan.phase === "replica" ? f.replicaPosition : f.position}' | tr -d '\\n')${plan.source ? ` lag=$(replica_field ${fields.lag})` : ""}"
if [ "$changed" = 1 ]; then echo "database: changed"; else echo "database: unchanged"; fi
`;
}

/** The probe app's account: per site (not binlogged), from the mesh, insert and read its table only. */
function probeAccount(meshPattern: string): string {
    const who = `'${PROBE_USER}'@'${meshPattern}'`;
    return `local_sql "CREATE USER IF NOT EXISTS ${who} IDENTIFIED BY '$probe_password'; ALTER USER ${who} IDENTIFIED BY '$probe_password'; GRANT SELECT, INSERT ON cutover_probe.* TO ${who}"`;
}

/**
 * After a cutover the runbook's role (ROLE_MARKER) wins over database.phase primary /
 * replica: the ensure-step keeps the server as the runbook left it and reports that.
 * Dual-primary and detached are explicit decisions and clear the marker.
 */
function roleGuard(f: FlavorSpec, phase: DbPhase): string {
    if (phase === "dual-primary" || phase === "detached") return `rm -f ${ROLE_MARKER}`;
    return `runbook_role=$(cat ${ROLE_MARKER} 2>/dev/null || true)
if [ -n "$runbook_role" ] && [ "$runbook_role" != ${phase} ]; then
    echo "database: kept as the cutover runbook left it ($runbook_role); cutover:database.phase says ${phase}"
    echo "database: role=$runbook_role position=$(sql '${phase === "replica" ? f.position : f.replicaPosition}' | tr -d '\\n') lag="
    echo "database: unchanged"
    exit 0
fi`;
}

/**
 * Every phase but detached keeps a replication user that exists only for mesh
 * addresses and only over TLS (REQUIRE SSL): the peer copies this site now or after
 * the flip. It may also read everything, which seeding needs.
 */
function sourceSteps(f: FlavorSpec, who: string): string {
    const [user, host] = who.split("@").map((p) => p.replace(/'/g, ""));
    return `exists=$(sql "SELECT COUNT(*) FROM mysql.user WHERE User='${user}' AND Host='${host}'")
if [ "$exists" = 0 ]; then
    local_sql "CREATE USER ${who} IDENTIFIED BY '$repl_password' REQUIRE SSL"
    changed=1
else
    # Keep the password in step with the stack's secret (no change when equal).
    local_sql "ALTER USER ${who} IDENTIFIED BY '$repl_password' REQUIRE SSL"
fi
local_sql "GRANT ${f.grants}, ${f.runbookGrants} ON *.* TO ${who}; GRANT CREATE, EVENT ON cutover.* TO ${who}"`;
}

/** Detached: no replication in either direction, and no account for the old site. */
function detachSteps(who: string): string {
    return `if [ "$(sql "SELECT COUNT(*) FROM mysql.user WHERE User='${REPL_USER}'")" != 0 ]; then
    local_sql "DROP USER IF EXISTS ${who}"
    changed=1
fi`;
}

/**
 * Replica and dual-primary: replicate from the peer over TLS, verifying its certificate
 * against the program's CAs. An empty server is first seeded from one consistent snapshot
 * streamed over the mesh (no file of the whole data set); a server that already holds
 * the data (the old site after the flip) attaches at its own position.
 */
function attachSteps(s: MysqlServer, f: FlavorSpec, src: MysqlSource): string {
    const tls = clientTls(s.flavor);
    const fields = f.statusFields;
    return `if [ "$(replica_field ${fields.host})" != "${src.meshAddress}" ]; then
    # The password goes through a client options file (mode 600), never a command line.
    opts=$(mktemp)
    trap 'rm -f "$opts"' EXIT
    printf '[client]\\nuser=${REPL_USER}\\npassword=%s\\n' "$peer_password" > "$opts"
    remote() { ${f.client} --defaults-extra-file="$opts" ${tls} -h ${src.meshAddress} -P ${src.port} --batch --skip-column-names -e "$1"; }
    remote "SELECT 1" >/dev/null || fail "cannot reach ${src.host} (${src.meshAddress}:${src.port}) over verified TLS as ${REPL_USER}"
    user_dbs="SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql','sys','information_schema','performance_schema','cutover')"
    sql "${f.resetReplica}" 2>/dev/null || true
    if [ -z "$(sql "$user_dbs")" ]; then
        dbs=$(remote "$user_dbs" | tr '\\n' ' ')
        started=$(date +%s%N)
        if [ -n "$dbs" ]; then
            # One consistent snapshot, streamed; it sets the GTID position it was taken at.
            { echo "${f.seedPrelude}"; ${f.dump} --defaults-extra-file="$opts" ${tls} -h ${src.meshAddress} -P ${src.port} \\
                ${f.dumpFlags} --routines --triggers --events --databases $dbs \\
                || fail "dump from ${src.host} failed"; } | ${f.client} || fail "seeding from ${src.host} failed"
        else
            ${f.positionOnly}
        fi
        echo "database: seeded [$dbs] in $(( ($(date +%s%N) - started) / 1000000 )) ms"
    else
        ${f.attachPrelude}
        echo "database: attaching with the data already here (no seed)"
    fi
    sql "${f.changeSource(src, `${DB_TLS_DIR}/ca.pem`)}"
    sql "${f.startReplica}"
    changed=1
fi
for _ in $(seq 1 60); do
    io=$(replica_field ${fields.io}); applier=$(replica_field ${fields.sql})
    [ "$io" = "Yes" ] && [ "$applier" = "Yes" ] && break
    sleep 0.5
done
[ "$io" = "Yes" ] || fail "replication from ${src.host} is not receiving: $(replica_field ${fields.ioError})"
[ "$applier" = "Yes" ] || fail "replication from ${src.host} is not applying: $(replica_field ${fields.sqlError})"`;
}

/** The step while the peer is not ready: nothing to copy from yet. */
export function waitingScript(step: string, host: string, why: string): string {
    return `${scriptHeader(step, host, `${step} on ${host}, waiting for the peer`)}
echo "${step}: waiting: ${why}"
`;
}
