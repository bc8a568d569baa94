// Adido's path: the new site's database is RDS MySQL, a replica of the old site's MySQL
// ("external master"). RDS cannot join the mesh, so one host of the new site (the relay)
// forwards a port of its private address to the old primary's mesh address; replication
// is TLS end to end (RDS <-> the old server). The relay also runs the seeding and, at the
// flip, the switch: freeze the old server (bounded, as in the runbook), wait until RDS has
// applied its last binlog position, promote RDS. All SQL goes to RDS's stored procedures,
// rendered here; passwords reach mysql through option files or stdin, never argv.
import { MysqlFlavor, REPL_USER, clientTls, DB_TLS_DIR } from "./mysql";
import { PUT_FILE, installIfMissing, readSecrets, scriptHeader } from "../script";
import { RunbookSettings, UNFREEZE_EVENT, freezeSql } from "../runbook/render";

export const RDS_ADMIN_USER = "cutover_admin";
export const RELAY_UNIT = "cutover-rds-relay";

export interface RdsEnd {
    /** The RDS endpoint address (no port) and port. */
    endpoint: string;
    port: number;
}

export interface RdsReplicaPlan {
    relay: { host: string; privateAddress: string; port: number };
    source: { site: string; host: string; meshAddress: string; port: number; flavor: MysqlFlavor };
    rds: RdsEnd;
    /** PEM: the CAs the old server's certificate is verified against (from the relay). */
    caBundle: string;
}

/** The relay: a socat forwarder, private address -> the old primary's mesh address. */
export function relayUnit(p: RdsReplicaPlan): string {
    return `[Unit]
Description=cutover: RDS replication relay to ${p.source.host} over the mesh
After=network-online.target

[Service]
ExecStart=/usr/bin/socat TCP-LISTEN:${p.relay.port},bind=${p.relay.privateAddress},fork,reuseaddr TCP:${p.source.meshAddress}:${p.source.port}
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
`;
}

/** The SQL that makes RDS replicate from the relay at a binlog position (TLS: the last argument). */
export function rdsAttachSql(p: RdsReplicaPlan, file: string, position: string, passwordVar: string): string {
    return `CALL mysql.rds_set_external_master('${p.relay.privateAddress}', ${p.relay.port}, '${REPL_USER}', '${passwordVar}', '${file}', ${position}, 1); CALL mysql.rds_start_replication;`;
}

/** The SQL that makes RDS a standalone primary. */
export const RDS_PROMOTE_SQL = "CALL mysql.rds_stop_replication; CALL mysql.rds_reset_external_master;";

function helpers(p: RdsReplicaPlan): string {
    return `${readSecrets({ "admin-password": "admin_password", "peer-password": "peer_password" })}
admin_opts=$(mktemp); src_opts=$(mktemp)
trap 'rm -f "$admin_opts" "$src_opts"' EXIT
printf '[client]\\nuser=${RDS_ADMIN_USER}\\npassword=%s\\n' "$admin_password" > "$admin_opts"
printf '[client]\\nuser=${REPL_USER}\\npassword=%s\\n' "$peer_password" > "$src_opts"
# RDS over TLS (its own CA is Amazon's); the old server over verified TLS through the mesh.
rds() { mysql --defaults-extra-file="$admin_opts" --ssl-mode=REQUIRED --connect-timeout=5 -h ${p.rds.endpoint} -P ${p.rds.port} --batch --skip-column-names "$@"; }
src() { mysql --defaults-extra-file="$src_opts" ${clientTls("mysql")} --connect-timeout=5 -h ${p.source.meshAddress} -P ${p.source.port} --batch --skip-column-names -e "$1"; }
rds_field() { rds -e "SHOW REPLICA STATUS\\G" | awk -F': ' -v k="$1" '{ sub(/^ +/, "", $1) } $1 == k { print $2 }'; }
src_position() { src "SHOW MASTER STATUS" | awk '{ print $1 " " $2 }'; }
rds_position() { echo "$(rds_field Relay_Source_Log_File) $(rds_field Exec_Source_Log_Pos)"; }`;
}

/** Ensure-step on the relay host: the forwarder, then RDS seeded and replicating. */
export function rdsReplicaScript(p: RdsReplicaPlan): string {
    const user_dbs = "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql','sys','information_schema','performance_schema','cutover')";
    return `${scriptHeader("database", p.relay.host, `RDS replica of ${p.source.host}, relayed by ${p.relay.host}`)}
${PUT_FILE}
${installIfMissing("socat", "socat")}${installIfMissing("mysql", "default-mysql-client")}put ${DB_TLS_DIR}/ca.pem 644 root:root runtime <<'CUTOVER_PEM'
${p.caBundle.trim()}
CUTOVER_PEM
put /etc/systemd/system/${RELAY_UNIT}.service 644 root:root config <<'CUTOVER_UNIT'
${relayUnit(p).trim()}
CUTOVER_UNIT
if [ "$restart" = 1 ] || ! systemctl is-active --quiet ${RELAY_UNIT}; then
    systemctl daemon-reload && systemctl enable --now ${RELAY_UNIT} >/dev/null 2>&1 && systemctl restart ${RELAY_UNIT} || fail "the relay ${RELAY_UNIT} does not start"
fi
${helpers(p)}
src "SELECT 1" >/dev/null || fail "cannot reach ${p.source.host} (${p.source.meshAddress}:${p.source.port}) over verified TLS as ${REPL_USER}"
rds -e "SELECT 1" >/dev/null || fail "cannot reach RDS at ${p.rds.endpoint}:${p.rds.port} as ${RDS_ADMIN_USER}"
if [ "$(rds_field Source_Host)" != "${p.relay.privateAddress}" ]; then
    [ -z "$(rds -e "${user_dbs}")" ] || fail "RDS holds databases but does not replicate from ${p.relay.host}; empty it (or attach it by hand with CALL mysql.rds_set_external_master) first"
    dbs=$(src "${user_dbs}" | tr '\\n' ' ')
    [ -n "$dbs" ] || fail "${p.source.host} has no databases to copy"
    started=$(date +%s%N)
    at=$(mktemp)
    # One consistent snapshot streamed into RDS; its binlog position is read from the dump's header.
    mysqldump --defaults-extra-file="$src_opts" ${clientTls("mysql")} -h ${p.source.meshAddress} -P ${p.source.port} \\
        --single-transaction --source-data=2 --set-gtid-purged=OFF --routines --triggers --events --databases $dbs \\
        | tee >(awk '/CHANGE (MASTER|REPLICATION SOURCE) TO/ && !done { print; done = 1 }' > "$at") \\
        | rds || fail "seeding RDS from ${p.source.host} failed"
    sleep 0.2
    file=$(sed -nE "s/.*LOG_FILE='([^']+)'.*/\\1/p" "$at"); position=$(sed -nE 's/.*LOG_POS=([0-9]+).*/\\1/p' "$at")
    [ -n "$file" ] && [ -n "$position" ] || fail "the dump of ${p.source.host} carries no binlog position"
    echo "database: seeded RDS with [$dbs] in $(( ($(date +%s%N) - started) / 1000000 )) ms at $file:$position"
    printf '%s\\n' "${rdsAttachSql(p, "$file", "$position", "$peer_password")}" | rds || fail "mysql.rds_set_external_master failed"
    changed=1
fi
for _ in $(seq 1 60); do
    io=$(rds_field Replica_IO_Running); applier=$(rds_field Replica_SQL_Running)
    [ "$io" = Yes ] && [ "$applier" = Yes ] && break
    sleep 1
done
[ "$io" = Yes ] || fail "RDS is not receiving from ${p.source.host}: $(rds_field Last_IO_Error)"
[ "$applier" = Yes ] || fail "RDS is not applying: $(rds_field Last_SQL_Error)"
echo "database: role=replica (RDS) position=$(rds_position) lag=$(rds_field Seconds_Behind_Source)"
if [ "$changed" = 1 ]; then echo "database: changed"; else echo "database: unchanged"; fi
`;
}

/**
 * The flip to RDS, on the relay host: t1 freeze the old server (read-only; its event
 * unfreezes it at the deadline), t2 wait until RDS executed the old server's last binlog
 * position (bounded), t3 promote RDS, t4 commit (drop the event; the old server must still
 * be frozen). The load balancer cannot hold requests: writes fail for the freeze (Adido: ~1 min).
 * Before t3 any failure unfreezes the old server. Flipping back from a promoted RDS is not automated.
 */
export function rdsSwitchScript(p: RdsReplicaPlan, from: string, to: string, s: RunbookSettings): string {
    const event = UNFREEZE_EVENT;
    const seconds = Math.ceil(s.freezeMs / 1000);
    return `${scriptHeader("switch", p.relay.host, `cutover runbook: switch on ${p.relay.host} (${from} -> ${to}, attempt ${s.attempt}), RDS`)}
now_ms() { date +%s%3N; }
${helpers(p)}
# A failed read is never "primary": an RDS that cannot be asked is unreachable, not promoted.
rds_primary() { local source; source=$(rds_field Source_Host) || fail "cannot read the replica status of RDS at ${p.rds.endpoint}:${p.rds.port}; nothing was changed"; [ -z "$source" ]; }
${to === p.source.site
        ? `if rds_primary; then
    fail "RDS is the primary since the flip to it; flipping back to ${p.source.site} is not automated: make ${p.source.host} a replica of RDS first (see README, RDS)"
fi
echo "runbook: ${p.source.site} is the primary, RDS replicates from it: nothing to switch"
exit 0`
        : `if rds_primary; then
    echo "runbook: RDS is already the primary: nothing to switch"
    exit 0
fi
frozen=0
abort() {
    set +e
    [ "$frozen" = 1 ] && src "SET SESSION sql_log_bin = 0; DROP EVENT IF EXISTS ${event}; SET GLOBAL read_only = OFF"
    fail "$1; aborted: ${p.source.site} stays live and writable"
}
lag=$(rds_field Seconds_Behind_Source)
[ -n "$lag" ] && [ "$lag" != NULL ] && [ "$lag" -le ${s.maxLagSeconds} ] || abort "RDS is \${lag:-not replicating} s behind (cutover:runbook.maxLagSeconds ${s.maxLagSeconds})"
t0=$(now_ms)
# t1: freeze the old server; its event unfreezes it at the deadline unless dropped at the commit.
src "${freezeSql(seconds)}" \\
    || abort "freezing ${p.source.host} failed"
frozen=1
want=$(src_position) || abort "cannot read the binlog position of ${p.source.host}"
echo "runbook: t1 frozen at $want (+$(( $(now_ms) - t0 )) ms)"
# t2: RDS must have executed everything up to that position.
deadline=$(( $(now_ms) + ${s.catchupMs} ))
until [ "$(rds_position)" = "$want" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || abort "RDS is at $(rds_position), not $want, after ${s.catchupMs} ms (cutover:runbook.catchupMs)"
    sleep 0.05
done
echo "runbook: t2 caught up (+$(( $(now_ms) - t0 )) ms)"
# t3: promote RDS.
rds -e "${RDS_PROMOTE_SQL}" || abort "promoting RDS failed"
echo "runbook: t3 promoted (+$(( $(now_ms) - t0 )) ms)"
# t4: commit: the old server stays read-only.
src "SET SESSION sql_log_bin = 0; DROP EVENT IF EXISTS ${event}" || fail "RDS is promoted but ${p.source.host} cannot be reached to drop its unfreeze event: set it read-only by hand (SET GLOBAL read_only = ON)"
[ "$(src 'SELECT @@read_only')" = 1 ] || fail "RDS is promoted but the freeze of ${p.source.host} ended at its deadline first: writes may have reached it after $want"
echo "runbook: t4 committed (+$(( $(now_ms) - t0 )) ms); the public names follow"`}
`;
}
