// PostgreSQL streaming replication across sites, over the mesh, with TLS and client
// certificates: the server settings, the pg_hba block, and one ensure-script per phase.
// Private keys arrive on stdin, never in the script text.
import { DbPhase } from "../types";
import { PUT_FILE, installIfMissing, putTlsFiles, readSecrets, scriptHeader } from "../script";
import { ROLE_MARKER } from "./mysql";

export const PG_TLS_DIR = "/etc/postgresql/cutover";
/** The replication role; its client certificate's common name (pg_hba `cert` maps CN to role). */
export const PG_REPL_ROLE = "replicator";

export interface PgServer {
    host: string;
    meshAddress: string;
    port: number;
}

export interface PgSource {
    host: string;
    meshAddress: string;
    port: number;
}

export interface PgPlan {
    phase: Exclude<DbPhase, "dual-primary">;
    meshCidr: string;
    /** PEM: this site's CA and (unless detached) the peer's. */
    caBundle: string;
    serverCert: string;
    /** This site's replication client certificate (CN = the replication role). */
    clientCert: string;
    /** The peer's server to copy (replica). */
    source?: PgSource;
    /** The rehearsal probe app's role (client certificate, CN probe), database and table. */
    probe?: boolean;
}

/** Server settings: WAL for streaming replicas, TLS, listening on loopback and the mesh only. */
export function pgConf(s: PgServer): string {
    return `# Rendered by cutover: streaming replication over TLS, loopback and mesh only.
listen_addresses = '127.0.0.1,${s.meshAddress}'
port = ${s.port}
wal_level = replica
max_wal_senders = 10
wal_keep_size = '1GB'
hot_standby = on
ssl = on
ssl_min_protocol_version = 'TLSv1.2'
ssl_cert_file = '${PG_TLS_DIR}/server.pem'
ssl_key_file = '${PG_TLS_DIR}/server.key'
ssl_ca_file = '${PG_TLS_DIR}/ca.pem'
`;
}

/**
 * The lines cutover owns at the top of pg_hba.conf (first match wins): replication only
 * from mesh addresses, only over TLS, only with a client certificate from the CAs.
 */
export function pgHbaBlock(meshCidr: string, probe = false): string {
    return `# BEGIN cutover (rendered; do not edit)
hostssl replication ${PG_REPL_ROLE} ${meshCidr} cert
hostnossl replication all ${meshCidr} reject
hostssl replication all ${meshCidr} reject
${probe ? `hostssl ${PG_PROBE_DB} ${PG_PROBE_ROLE} ${meshCidr} cert
` : ""}# END cutover
`;
}

export const PG_PROBE_ROLE = "probe";
export const PG_PROBE_DB = "cutover_probe";

/** On the primary: the probe's role (certificate login), database and table; standbys get them by replication. */
function probeObjects(): string {
    return `if [ "$(sql "SELECT count(*) FROM pg_roles WHERE rolname = '${PG_PROBE_ROLE}'")" = 0 ]; then sql "CREATE ROLE ${PG_PROBE_ROLE} LOGIN"; changed=1; fi
if [ "$(sql "SELECT count(*) FROM pg_database WHERE datname = '${PG_PROBE_DB}'")" = 0 ]; then sql "CREATE DATABASE ${PG_PROBE_DB}"; changed=1; fi
runuser -u postgres -- psql -X -q -At -p "$port" -d ${PG_PROBE_DB} -c "CREATE TABLE IF NOT EXISTS writes (id bigserial PRIMARY KEY, client varchar(32) NOT NULL, seq int NOT NULL, site varchar(32) NOT NULL, host varchar(64) NOT NULL, at timestamptz NOT NULL DEFAULT now()); GRANT INSERT, SELECT ON writes TO ${PG_PROBE_ROLE}; GRANT USAGE ON SEQUENCE writes_id_seq TO ${PG_PROBE_ROLE}" >/dev/null`;
}

/** libpq connection string of the replica to its primary: verify-full against the CAs, client certificate. */
export function primaryConninfo(host: string, src: PgSource): string {
    return [
        `host=${src.meshAddress}`,
        `port=${src.port}`,
        `user=${PG_REPL_ROLE}`,
        "sslmode=verify-full",
        `sslrootcert=${PG_TLS_DIR}/ca.pem`,
        `sslcert=${PG_TLS_DIR}/replication.pem`,
        `sslkey=${PG_TLS_DIR}/replication.key`,
        `application_name=${host.replace(/[^A-Za-z0-9_]/g, "_")}`,
    ].join(" ");
}

export function pgScript(s: PgServer, plan: PgPlan): string {
    const about = plan.source ? `PostgreSQL ${plan.phase} on ${s.host}, replicating from ${plan.source.host}` : `PostgreSQL ${plan.phase} on ${s.host}`;
    return `${scriptHeader("database", s.host, about)}
${installIfMissing("pg_ctlcluster", "postgresql")}
${readSecrets({ "server-key": "server_key", "client-key": "client_key" })}

ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
[ -n "$ver" ] || fail "no PostgreSQL server under /usr/lib/postgresql"
conf=/etc/postgresql/$ver/main
if [ ! -d "$conf" ]; then
    pg_createcluster "$ver" main >/dev/null || fail "pg_createcluster $ver main failed"
    changed=1
fi
data=$(awk -F"'" '/^data_directory/ { print $2 }' "$conf/postgresql.conf")

${PUT_FILE}
${putTlsFiles(PG_TLS_DIR, "postgres:postgres", { "ca.pem": plan.caBundle, "server.pem": plan.serverCert, "replication.pem": plan.clientCert }, { "server.key": "server_key", "replication.key": "client_key" })}
put "$conf/conf.d/60-cutover.conf" 644 postgres:postgres config <<'CUTOVER_CONF'
${pgConf(s).trim()}
CUTOVER_CONF
# pg_hba: our block first, the rest of the file as it was.
{ cat <<'CUTOVER_HBA'
${pgHbaBlock(plan.meshCidr, plan.probe).trim()}
CUTOVER_HBA
awk '/^# BEGIN cutover/ { skip = 1 } !skip { print } /^# END cutover/ { skip = 0 }' "$conf/pg_hba.conf"; } | put "$conf/pg_hba.conf" 640 postgres:postgres config

cluster() { pg_ctlcluster "$ver" main "$1" || fail "pg_ctlcluster $ver main $1 failed: $(tail -n 5 /var/log/postgresql/postgresql-$ver-main.log 2>/dev/null)"; }
running() { pg_ctlcluster "$ver" main status >/dev/null 2>&1; }
port=${s.port}
sql() { runuser -u postgres -- psql -X -q -At -p ${s.port} -c "$1"; }
ready() { for _ in $(seq 1 60); do sql "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.5; done; fail "PostgreSQL does not answer after 30 s"; }
${roleGuardPg(plan.phase)}
if ! running; then
    cluster start
    changed=1
elif [ "$restart" = 1 ] || [ "$reload_tls" = 1 ]; then
    # A reload applies pg_hba, TLS files and most settings online; restart only if one needs it.
    cluster reload
fi
ready
if [ "$(sql "SELECT count(*) FROM pg_settings WHERE pending_restart")" != 0 ]; then
    cluster restart
    ready
fi

${plan.phase === "replica" ? replicaSteps(s, plan.source!) : primarySteps(plan.phase)}
${plan.probe && plan.phase === "primary" ? probeObjects() : ""}
if [ "$changed" = 1 ]; then echo "database: changed"; else echo "database: unchanged"; fi
`;
}

/** Primary (or detached): writable; a standby left from an earlier phase is promoted with pg_promote(). */
function primarySteps(phase: "primary" | "detached"): string {
    return `if [ "$(sql "SELECT pg_is_in_recovery()")" = t ]; then
    [ "$(sql "SELECT pg_promote(true, 60)")" = t ] || fail "pg_promote() did not finish within 60 s"
    sql "ALTER SYSTEM RESET primary_conninfo"
    sql "SELECT pg_reload_conf()" >/dev/null
    echo "database: promoted"
    changed=1
fi
${phase === "detached"
        ? `# Detached: no account for the old site any more.
if [ "$(sql "SELECT count(*) FROM pg_roles WHERE rolname = '${PG_REPL_ROLE}'")" != 0 ]; then
    sql "DROP ROLE ${PG_REPL_ROLE}"
    changed=1
fi`
        : `if [ "$(sql "SELECT count(*) FROM pg_roles WHERE rolname = '${PG_REPL_ROLE}'")" = 0 ]; then
    # No password: the role authenticates with its client certificate only (pg_hba "cert").
    sql "CREATE ROLE ${PG_REPL_ROLE} WITH REPLICATION LOGIN"
    changed=1
fi`}
echo "database: role=${phase} position=$(sql "SELECT pg_current_wal_lsn()")"`;
}

/**
 * Replica: built once with pg_basebackup, streamed from the primary over the mesh into a
 * new data directory next to the old one (no dump file); the old directory is only
 * swapped out after the copy succeeded. A cluster that holds databases is never replaced.
 */
function replicaSteps(s: PgServer, src: PgSource): string {
    const conninfo = primaryConninfo(s.host, src);
    return `current=$(sql "SELECT CASE WHEN pg_is_in_recovery() THEN current_setting('primary_conninfo') ELSE '' END")
case " $current " in
*" host=${src.meshAddress} "*) ;;
*)
    user_dbs=$(sql "SELECT count(*) FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')")
    [ "$user_dbs" = 0 ] || fail "this cluster holds $user_dbs database(s); a replica is rebuilt from ${src.host} with pg_basebackup, which would replace them. Move them away first"
    ${pgBaseBackup(conninfo, src.host, `"$data.cutover-previous"`)}
    ready
    rm -rf "$data.cutover-previous"
    changed=1
    ;;
esac
for _ in $(seq 1 60); do
    status=$(sql "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null || true)
    [ "$status" = streaming ] && break
    sleep 0.5
done
[ "$status" = streaming ] || fail "not streaming from ${src.host} (wal receiver: \${status:-none}): $(tail -n 3 /var/log/postgresql/postgresql-$ver-main.log 2>/dev/null)"
echo "database: role=replica position=$(sql "SELECT pg_last_wal_replay_lsn()") lag=$(sql "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())")"`;
}

/**
 * Rebuilds this cluster as a standby of `conninfo`: a streamed pg_basebackup next to the
 * data directory, then swapped in; the old directory is moved to `keep` (the caller
 * decides whether to delete it). Needs the shell function `cluster` and $data.
 */
export function pgBaseBackup(conninfo: string, srcHost: string, keep: string): string {
    return `seed="$data.cutover-seed"
    rm -rf "$seed"
    started=$(date +%s%N)
    if ! err=$(runuser -u postgres -- pg_basebackup -D "$seed" -X stream -R --checkpoint=fast -d "${conninfo}" 2>&1); then
        rm -rf "$seed"
        fail "pg_basebackup from ${srcHost} failed: $err"
    fi
    echo "database: seeded from ${srcHost} in $(( ($(date +%s%N) - started) / 1000000 )) ms ($(du -sm "$seed" | cut -f1) MB)"
    cluster stop >/dev/null 2>&1 || true
    rm -rf ${keep}
    mv "$data" ${keep}
    mv "$seed" "$data"
    cluster start`;
}

/**
 * After a cutover the runbook's role (ROLE_MARKER) wins over cutover:database.phase: an
 * ensure-step never promotes a standby the runbook demoted, nor rebuilds a promoted primary.
 */
function roleGuardPg(phase: PgPlan["phase"]): string {
    if (phase === "detached") return `rm -f ${ROLE_MARKER}`;
    return `runbook_role=$(cat ${ROLE_MARKER} 2>/dev/null || true)
if [ -n "$runbook_role" ] && [ "$runbook_role" != ${phase} ]; then
    running || cluster start
    ready
    echo "database: kept as the cutover runbook left it ($runbook_role); cutover:database.phase says ${phase}"
    echo "database: role=$runbook_role position=$(sql "SELECT COALESCE(pg_last_wal_replay_lsn(), pg_current_wal_lsn())") lag="
    echo "database: unchanged"
    exit 0
fi`;
}
