// MySQL/MariaDB replication across sites, over the mesh, with TLS: the server config and
// the ensure-scripts for the primary and the replica. Secrets (the replication password,
// the server's private key) arrive on stdin, never in the script text.
import { DbEngine } from "../types";
import { installIfMissing, scriptHeader } from "../script";

export const DB_TLS_DIR = "/etc/mysql/cutover";
export const REPL_USER = "repl";

export interface MysqlServer {
    host: string;
    engine: Extract<DbEngine, "mysql" | "mariadb">;
    serverId: number;
    /** Addresses mysqld listens on: loopback for the local app, the mesh address for the peer. */
    meshAddress: string;
    port: number;
}

/** A server id unique across both sites: from the host's mesh address. */
export function serverIdFor(meshAddress: string): number {
    const [, , c, d] = meshAddress.split(".").map(Number);
    return c * 256 + d;
}

/** MariaDB accepts a network/netmask host pattern: the replication user only from the mesh. */
export function meshHostPattern(meshCidr: string): string {
    const [net, len] = meshCidr.split("/");
    const bits = Number(len);
    const mask = [0, 1, 2, 3].map((i) => (bits >= (i + 1) * 8 ? 255 : bits <= i * 8 ? 0 : 256 - 2 ** ((i + 1) * 8 - bits))).join(".");
    return `${net}/${mask}`;
}

export function mysqlConf(s: MysqlServer, replica: boolean): string {
    return `# Rendered by cutover: binary log with GTIDs, TLS, listening on loopback and the mesh.
[mariadbd]
server_id = ${s.serverId}
log_bin = mariadb-bin
binlog_format = ROW
log_slave_updates = ON
gtid_strict_mode = ON
bind_address = 127.0.0.1,${s.meshAddress}
port = ${s.port}
ssl_ca = ${DB_TLS_DIR}/ca.pem
ssl_cert = ${DB_TLS_DIR}/server.pem
ssl_key = ${DB_TLS_DIR}/server.key
# A replica takes no writes but replication's until it is promoted.
read_only = ${replica ? "ON" : "OFF"}
`;
}

function tlsFiles(caBundle: string, serverCert: string): string {
    return `install -d -m 750 -o mysql -g mysql ${DB_TLS_DIR}
put ${DB_TLS_DIR}/ca.pem 644 tls <<'CUTOVER_CA'
${caBundle.trim()}
CUTOVER_CA
put ${DB_TLS_DIR}/server.pem 644 tls <<'CUTOVER_CERT'
${serverCert.trim()}
CUTOVER_CERT
printf '%s\\n' "$server_key" | put ${DB_TLS_DIR}/server.key 600 tls
chown mysql:mysql ${DB_TLS_DIR}/server.key`;
}

/** Shared part: stdin, files, (re)start when they changed, wait until it answers. */
function ensureServer(s: MysqlServer, replica: boolean, caBundle: string, serverCert: string): string {
    return `${installIfMissing("mariadbd", "mariadb-server")}
# stdin: the replication password on the first line, then the server's private key.
IFS= read -r repl_password || fail "no replication password on stdin"
server_key=$(cat)
case "$server_key" in *"PRIVATE KEY"*) ;; *) fail "no server key on stdin" ;; esac

# put <path> <mode> <what>: replace the file only when its content differs; note what changed.
restart=0
reload_tls=0
put() {
    local path=$1 mode=$2 what=$3 tmp
    tmp=$(mktemp)
    cat > "$tmp"
    if ! cmp -s "$tmp" "$path"; then
        install -m "$mode" "$tmp" "$path"
        if [ "$what" = config ]; then restart=1; else reload_tls=1; fi
        changed=1
    fi
    rm -f "$tmp"
}
${tlsFiles(caBundle, serverCert)}
put /etc/mysql/mariadb.conf.d/60-cutover.cnf 644 config <<'CUTOVER_CNF'
${mysqlConf(s, replica).trim()}
CUTOVER_CNF

svc() {
    if [ -d /run/systemd/system ]; then systemctl "$1" mariadb; else /etc/init.d/mariadb "$1" >/dev/null; fi
}
if ! mariadb-admin ping >/dev/null 2>&1; then
    svc start || fail "mariadb did not start: $(tail -n 5 /var/log/mysql/error.log 2>/dev/null)"
    changed=1
elif [ "$restart" = 1 ]; then
    svc restart || fail "mariadb did not restart: $(tail -n 5 /var/log/mysql/error.log 2>/dev/null)"
fi
for _ in $(seq 1 60); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.5; done
mariadb-admin ping >/dev/null 2>&1 || fail "mariadb does not answer after 30 s"
sql() { mariadb --batch --skip-column-names -e "$1"; }
# New certificates or CA bundle (the peer's CA added): reloaded online, the server keeps serving.
if [ "$restart" = 0 ] && [ "$reload_tls" = 1 ]; then sql "FLUSH SSL" || fail "FLUSH SSL failed"; fi
# slave <field>: one field of SHOW SLAVE STATUS (empty when not a replica).
slave() { mariadb -e "SHOW SLAVE STATUS\\G" | awk -F': ' -v k="$1" '{ sub(/^ +/, "", $1) } $1 == k { print $2 }'; }`;
}

/**
 * The primary: TLS, binary log with GTIDs, and a replication user that exists only for
 * mesh addresses and only over TLS (REQUIRE SSL). It may also read everything, which the
 * replica's seeding needs.
 */
export function mysqlPrimaryScript(s: MysqlServer, meshCidr: string, caBundle: string, serverCert: string): string {
    const who = `'${REPL_USER}'@'${meshHostPattern(meshCidr)}'`;
    return `${scriptHeader("database", s.host, `MariaDB primary on ${s.host}`)}
${ensureServer(s, false, caBundle, serverCert)}

exists=$(sql "SELECT COUNT(*) FROM mysql.user WHERE User='${REPL_USER}' AND Host='${meshHostPattern(meshCidr)}'")
if [ "$exists" = 0 ]; then
    sql "CREATE USER ${who} IDENTIFIED BY '$repl_password' REQUIRE SSL"
    changed=1
else
    # Keep the password in step with the stack's secret (no change when equal).
    sql "ALTER USER ${who} IDENTIFIED BY '$repl_password' REQUIRE SSL"
fi
sql "GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, SELECT, RELOAD, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON *.* TO ${who}"
echo "database: primary gtid_binlog_pos=$(sql 'SELECT @@gtid_binlog_pos')"
if [ "$changed" = 1 ]; then echo "database: changed"; else echo "database: unchanged"; fi
`;
}

export interface MysqlSource {
    host: string;
    meshAddress: string;
    port: number;
}

/**
 * The replica: seeded once from a consistent snapshot of the primary streamed over the
 * mesh (mariadb-dump --single-transaction --gtid piped into the local server: no file of
 * the whole data set), then replicating with GTIDs over TLS, verifying the primary's
 * certificate against the program's CA. Already replicating from this source: nothing.
 */
export function mysqlReplicaScript(s: MysqlServer, source: MysqlSource, caBundle: string, serverCert: string): string {
    const tls = `--ssl --ssl-ca=${DB_TLS_DIR}/ca.pem --ssl-verify-server-cert`;
    return `${scriptHeader("database", s.host, `MariaDB replica on ${s.host} of ${source.host}`)}
${ensureServer(s, true, caBundle, serverCert)}

if [ "$(slave Master_Host)" != "${source.meshAddress}" ]; then
    # The password goes through a client options file (mode 600), never a command line.
    opts=$(mktemp)
    trap 'rm -f "$opts"' EXIT
    printf '[client]\\nuser=${REPL_USER}\\npassword=%s\\n' "$repl_password" > "$opts"
    remote() { mariadb --defaults-extra-file="$opts" ${tls} -h ${source.meshAddress} -P ${source.port} --batch --skip-column-names -e "$1"; }
    remote "SELECT 1" >/dev/null || fail "cannot reach the primary ${source.host} (${source.meshAddress}) over TLS as ${REPL_USER}"
    dbs=$(remote "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql','sys','information_schema','performance_schema')" | tr '\\n' ' ')
    sql "STOP SLAVE; RESET SLAVE ALL" 2>/dev/null || true
    started=$(date +%s%N)
    if [ -n "$dbs" ]; then
        # One consistent snapshot, streamed; it sets gtid_slave_pos to the snapshot's position.
        mariadb-dump --defaults-extra-file="$opts" ${tls} -h ${source.meshAddress} -P ${source.port} \\
            --single-transaction --gtid --master-data=1 --routines --triggers --events --databases $dbs \\
            | mariadb || fail "seeding from ${source.host} failed"
    else
        sql "SET GLOBAL gtid_slave_pos='$(remote 'SELECT @@gtid_binlog_pos')'"
    fi
    echo "database: seeded [$dbs] in $(( ($(date +%s%N) - started) / 1000000 )) ms"
    sql "CHANGE MASTER TO MASTER_HOST='${source.meshAddress}', MASTER_PORT=${source.port}, MASTER_USER='${REPL_USER}', MASTER_PASSWORD='$repl_password', MASTER_SSL=1, MASTER_SSL_CA='${DB_TLS_DIR}/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1, MASTER_USE_GTID=slave_pos"
    sql "START SLAVE"
    changed=1
fi
for _ in $(seq 1 60); do
    io=$(slave Slave_IO_Running)
    [ "$io" = "Yes" ] && break
    sleep 0.5
done
[ "$io" = "Yes" ] || fail "replication from ${source.host} is not running: $(slave Last_IO_Error)"
echo "database: replica of ${source.host} gtid_slave_pos=$(sql 'SELECT @@gtid_slave_pos')"
if [ "$changed" = 1 ]; then echo "database: changed"; else echo "database: unchanged"; fi
`;
}

/** The replica's step while the peer is not deployed: nothing to copy from yet. */
export function replicaWaitingScript(host: string, why: string): string {
    return `${scriptHeader("database", host, `MariaDB replica on ${host}, waiting for the peer`)}
echo "database: replica waiting: ${why}"
`;
}
