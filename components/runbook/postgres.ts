// The cutover runbook for PostgreSQL (OneSignal's t0..t5), four ordered steps:
//   precheck (incoming)  postpone flag, hook, streaming from the outgoing server, edges reachable
//   freeze   (outgoing)  t0 hold writes on every edge and drain; t1 stop the outgoing server
//                        cleanly (its WAL senders ship everything, the shutdown checkpoint
//                        included, before it exits) and start a watchdog that restarts it at
//                        the freeze deadline unless the incoming server was promoted
//   switch   (incoming)  t2 replay up to the outgoing server's last checkpoint (bounded);
//                        t3 promote and validate; t4 commit: the outgoing server is still
//                        down; t5 route every edge to the incoming site and release
//   resume   (outgoing)  becomes a standby of the incoming server on its new timeline (possible
//                        only because it holds nothing the incoming one lacks: lost = 0)
// A failure before t4 leaves the outgoing site to come back: promoted-then-failed incoming
// servers shut themselves down (the watchdog then restarts the outgoing one at the deadline)
// and are rebuilt as standbys by the resume of the next run; the edges hold until it answers.
// A freeze runs once per attempt: a retry (which the engine runs without the unchanged
// precheck) refuses until the attempt is bumped, and a retried switch refuses a freeze that
// has ended. The window is not detached from the operator's session (MySQL's is, detach.ts):
// its deadline leaves no room for a second process start; if the session is lost, the
// watchdog (started before the stop) brings the outgoing server back at the deadline.
import { ROLE_MARKER } from "../database/mysql";
import { PG_REPL_ROLE, PG_TLS_DIR, pgBaseBackup } from "../database/postgres";
import { installIfMissing } from "../script";
import { cacheAbort, cacheCommit, cacheFence, cacheFollow, cacheHelpers, cachePrecheck, cacheSwitch } from "./cache";
import { AUDIT_LOG, DbEnd, EdgeEnd, MARK, RunbookSettings, auditFields, edgeHelpers, edgesAnswer, header, holdAndDrain, holdMs, postponeAndPrecheck, routeEdges, validateHook } from "./render";
import { SWITCH_RUNS } from "./detach";

export interface PgFlip {
    from: DbEnd;
    to: DbEnd;
    edges: EdgeEnd[];
    settings: RunbookSettings;
    /** Redis on the db host of both sites: switched in the same window (cache.ts). */
    cache: boolean;
}

/** What the freeze step reports to the switch. */
export interface PgFrozen {
    /** The outgoing server's last checkpoint (the shutdown's). */
    stoppedAt: string;
    timeline: string;
    /** Epoch ms after which the watchdog restarts the outgoing server unless promoted. */
    deadline: string;
}

export const WATCHDOG_LOG = "/var/log/cutover/freeze-watchdog.log";

/** Shell helpers on a PostgreSQL host: the cluster, local SQL, and replication-protocol commands to the other server. */
function pgHelpers(local: DbEnd, other: DbEnd): string {
    const conninfo = `host=${other.meshAddress} port=${other.port} user=${PG_REPL_ROLE} sslmode=verify-full sslrootcert=${PG_TLS_DIR}/ca.pem sslcert=${PG_TLS_DIR}/replication.pem sslkey=${PG_TLS_DIR}/replication.key replication=true connect_timeout=2`;
    return `ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
conf=/etc/postgresql/$ver/main
data=$(awk -F"'" '/^data_directory/ { print $2 }' "$conf/postgresql.conf")
cluster() { pg_ctlcluster "$ver" main "$@"; }
sql() { runuser -u postgres -- psql -X -q -At -p ${local.port} -c "$1"; }
# The other server, over the replication protocol (client certificate, verified TLS).
other() { runuser -u postgres -- psql -X -q -At -F ' ' "${conninfo}" -c "$1"; }
other_timeline() { other "IDENTIFY_SYSTEM" 2>/dev/null | awk '{ print $2 }'; }
install -d -m 755 "$(dirname ${ROLE_MARKER})" "$(dirname ${AUDIT_LOG})"`;
}

/** precheck, on the incoming host: `needed=1` while it is a standby of the outgoing server. */
export function pgPrecheckScript(f: PgFlip): string {
    const s = f.settings;
    return `${header("precheck", f.to.host, f)}
${installIfMissing("socat", "socat")}
${pgHelpers(f.to, f.from)}
${f.cache ? `${cacheHelpers()}\n` : ""}${postponeAndPrecheck(f)}
if [ "$(sql "SELECT pg_is_in_recovery()")" = t ]; then
    for _ in $(seq 1 100); do [ "$(sql "SELECT status FROM pg_stat_wal_receiver")" = streaming ] && break; sleep 0.1; done
    [ "$(sql "SELECT status FROM pg_stat_wal_receiver")" = streaming ] || fail "vetoed: ${f.to.host} is not streaming from ${f.from.host}"
    sender=$(sql "SELECT sender_host FROM pg_stat_wal_receiver")
    [ "$sender" = "${f.from.meshAddress}" ] || fail "vetoed: ${f.to.host} streams from $sender, not from ${f.from.host} (${f.from.meshAddress})"
    # Replay delay behind what was received, in seconds of the outgoing server's clock.
    lag=$(sql "SELECT COALESCE(floor(extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::int * (pg_last_wal_receive_lsn() <> pg_last_wal_replay_lsn())::int, 0)")
    [ "$lag" -le ${s.maxLagSeconds} ] || fail "vetoed: ${f.to.host} replays $lag s behind ${f.from.host}; at most ${s.maxLagSeconds} s (cutover:runbook.maxLagSeconds)"
    needed=1
elif [ "$(other "SHOW in_hot_standby" 2>/dev/null)" = off ]; then
    fail "${f.to.host} is a primary while ${f.from.host} still runs (an earlier attempt aborted after promotion?): set cutover:live back to ${f.from.site} and run pulumi up"
else
    needed=0
fi
${f.cache ? `${cachePrecheck(f)}\n` : ""}${edgeHelpers(f)}
${edgesAnswer()}
say "precheck needed=$needed position=$(sql "SELECT COALESCE(pg_last_wal_replay_lsn(), pg_current_wal_lsn())") in $(( $(now_ms) - started )) ms"
`;
}

/** The watchdog left on the outgoing host: at the deadline it restarts the server unless the incoming one was promoted. */
function watchdog(f: PgFlip): string {
    return `deadline=$1; timeline=$2
while [ "$(date +%s%3N)" -lt "$deadline" ]; do sleep 0.1; done
t=$(other_timeline)
if [ -n "$t" ] && [ "$t" -gt "$timeline" ]; then echo "$(date -Is) ${f.to.host} promoted (timeline $t): staying down"; exit 0; fi
echo "$(date -Is) ${f.to.host} not promoted (timeline \${t:-unreachable}): restarting as primary"
cluster start
# Promoted meanwhile after all (it was late): no edge sends writes here; stand down again.
sleep 1
t=$(other_timeline)
if [ -n "$t" ] && [ "$t" -gt "$timeline" ]; then echo "$(date -Is) ${f.to.host} promoted late: stopping again"; cluster stop -m fast; fi`;
}

/** On the outgoing host: this attempt's freeze ran (removed by the resume once the flip completed). */
export function freezeMarker(f: Pick<PgFlip, "from" | "to" | "settings">): string {
    return `${SWITCH_RUNS}/${f.from.site}-${f.to.site}-${f.settings.attempt}.freeze`;
}

/** freeze, on the outgoing host: t0 hold and drain, t1 clean stop + watchdog. Prints the stop position. */
export function pgFreezeScript(f: PgFlip, needed: boolean): string {
    const s = f.settings;
    if (!needed) return `${header("freeze", f.from.host, f)}
say "freeze: nothing to do (${f.to.host} is already the primary)"
`;
    return `${header("freeze", f.from.host, f)}
${pgHelpers(f.from, f.to)}
${edgeHelpers(f)}
${MARK}
# Once per attempt: a retry runs without the precheck's postpone flag, hook and lag checks.
marker=${freezeMarker(f)}
if [ -e "$marker" ]; then
    fail "this attempt's freeze already ran ($(cat "$marker")) and the flip did not complete; a retry would run without the precheck: set cutover:runbook.attempt to ${s.attempt + 1} to check everything and flip again"
fi
install -d -m 700 ${SWITCH_RUNS}
date -Is > "$marker"
held=0
abort() {
    set +e
    cluster status >/dev/null 2>&1 || cluster start
    if [ "$held" = 1 ]; then for e in $EDGES; do edge "\${e#*=}" "cutover hold off" >/dev/null 2>&1; done; fi
    fail "$1; aborted: ${f.from.site} stays live"
}
[ "$(sql "SELECT pg_is_in_recovery()")" = f ] || fail "${f.from.host} is not a running primary"
timeline=$(sql "SELECT timeline_id FROM pg_control_checkpoint()")
${holdAndDrain(f)}
# t1: a clean (fast) stop: the WAL senders ship everything, the shutdown checkpoint too, to the standby.
# The watchdog starts first: whatever ends this session from here on, the server comes back at the deadline.
deadline=$(( $(now_ms) + ${s.freezeMs} ))
setsid nohup bash -c "$(declare -f cluster other other_timeline); ver=$ver; $(cat <<'CUTOVER_WATCHDOG'
${watchdog(f)}
CUTOVER_WATCHDOG
)" watchdog "$deadline" "$timeline" >> ${WATCHDOG_LOG} 2>&1 < /dev/null &
cluster stop -m fast || abort "stopping ${f.from.host} failed"
control=$(runuser -u postgres -- /usr/lib/postgresql/$ver/bin/pg_controldata "$data") || abort "pg_controldata failed on ${f.from.host}"
state=$(echo "$control" | awk -F': *' '/^Database cluster state/ { print $2 }')
[ "$state" = "shut down" ] || abort "${f.from.host} stopped in state '$state', not a clean shut down"
stopped_at=$(echo "$control" | awk -F': *' '/^Latest checkpoint location/ { print $2 }')
mark 1 frozen "in-flight=$busy position=$stopped_at"
say "freeze stopped_at=$stopped_at timeline=$timeline deadline=$deadline"
`;
}

/** Reads the freeze step's report. */
export function pgFrozen(stdout: string): PgFrozen | undefined {
    const m = /^runbook: freeze stopped_at=(\S+) timeline=(\d+) deadline=(\d+)/m.exec(stdout);
    return m ? { stoppedAt: m[1], timeline: m[2], deadline: m[3] } : undefined;
}

/** switch, on the incoming host: t2..t5. */
export function pgSwitchScript(f: PgFlip, needed: boolean, frozen: PgFrozen | undefined): string {
    const s = f.settings;
    if (!needed || !frozen) {
        return `${header("switch", f.to.host, f)}
${edgeHelpers(f)}
${MARK}
${needed ? `fail "the freeze step reported no stop position; nothing was promoted"` : routeEdges(f, false)}
mark 5 routed
`;
    }
    return `${header("switch", f.to.host, f)}
${pgHelpers(f.to, f.from)}
${f.cache ? `${cacheHelpers()}\n` : ""}${edgeHelpers(f)}
${MARK}
stopped_at=${frozen.stoppedAt}; timeline=${frozen.timeline}; deadline=${frozen.deadline}
# A retried switch continues a freeze only while it lasts.
[ "$(now_ms)" -lt "$deadline" ] || fail "the freeze of this attempt ended at its deadline (this is a retry after a failure): set cutover:runbook.attempt to ${s.attempt + 1} to run precheck, freeze and switch again"
promoted=0
# Before the commit every failure ends here: the outgoing server comes back (its watchdog
# restarts it at the deadline), the edges keep holding until it answers, then release to it.
abort() {
    set +e
    if [ "$promoted" = 1 ]; then
        cluster stop -m immediate
        echo aborted > ${ROLE_MARKER}
    fi
    for _ in $(seq 1 $(( (${holdMs(s)} + 5000) / 100 ))); do [ -n "$(other_timeline)" ] && break; sleep 0.1; done
${f.cache ? `    ${cacheAbort()}\n` : ""}    for e in $EDGES; do edge "\${e#*=}" "cutover hold off" >/dev/null 2>&1 || echo "switch: edge \${e%%=*} releases at its deadline" >&2; done
    fail "$1; aborted: ${f.from.site} stays live$([ "$promoted" = 1 ] && echo "; ${f.to.host} was shut down: set cutover:live back to ${f.from.site} and run pulumi up to rebuild it as a standby")"
}
[ "$(sql "SELECT pg_is_in_recovery()")" = t ] || abort "${f.to.host} is not a standby"
# t2: replay up to the outgoing server's shutdown checkpoint (bounded).
until_ms=$(( $(now_ms) + ${s.catchupMs} ))
caught_from=$(now_ms)
until [ "$(sql "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '$stopped_at') >= 0")" = t ]; do
    [ "$(now_ms)" -lt "$until_ms" ] || abort "${f.to.host} replayed only to $(sql "SELECT pg_last_wal_replay_lsn()") of $stopped_at after ${s.catchupMs} ms (cutover:runbook.catchupMs)"
    sleep 0.01
done
${f.cache ? `${cacheSwitch(f)}\n` : ""}mark 2 caught-up "waited=$(( $(now_ms) - caught_from ))${f.cache ? " cache-offset=$cache_want" : ""}"
# t3: promote (only well before the watchdog's deadline), then validate.
[ "$(( deadline - $(now_ms) ))" -gt 1000 ] || abort "too close to the freeze deadline to promote safely"
promoted=1
[ "$(sql "SELECT pg_promote(true, 10)")" = t ] || abort "pg_promote() did not finish"
echo primary > ${ROLE_MARKER}
sql "ALTER SYSTEM RESET primary_conninfo" && sql "SELECT pg_reload_conf()" >/dev/null
[ "$(sql "SELECT pg_is_in_recovery()")" = f ] || abort "validation: ${f.to.host} is still in recovery"
${validateHook(s)}
mark 3 promoted
${f.cache ? `${cacheFence(f)}\n` : ""}# t4: commit only while the outgoing server is still down (its watchdog did not restart it).
[ -z "$(other_timeline)" ] || abort "${f.from.host} answers again (its watchdog restarted it at the deadline)"
mark 4 committed "lost=0"
${f.cache ? `${cacheCommit()}\n` : ""}# t5: route every edge to the incoming site and release the held writes there.
${routeEdges(f, true)}
mark 5 routed
`;
}

/** resume, on the outgoing host: a standby of the incoming server, then the audit record. */
export function pgResumeScript(f: PgFlip, needed: boolean, marks: Record<string, string>): string {
    const audit = auditFields(marks);
    const conninfo = `host=${f.to.meshAddress} port=${f.to.port} user=${PG_REPL_ROLE} sslmode=verify-full sslrootcert=${PG_TLS_DIR}/ca.pem sslcert=${PG_TLS_DIR}/replication.pem sslkey=${PG_TLS_DIR}/replication.key application_name=${f.from.host.replace(/[^A-Za-z0-9_]/g, "_")}`;
    if (!needed) {
        // Nothing was switched; only a server an aborted attempt promoted (and shut down) is rebuilt.
        return `${header("resume", f.from.host, f)}
${pgHelpers(f.from, f.to)}
if [ "$(cat ${ROLE_MARKER} 2>/dev/null || true)" != aborted ]; then say "resume: nothing to do"; exit 0; fi
# It never served (the edges held writes); ${f.to.host} has everything. Its data is kept aside.
${pgBaseBackup(conninfo, f.to.host, `"$data.cutover-aborted-$(date +%s)"`)}
for _ in $(seq 1 100); do [ "$(sql "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null)" = streaming ] && break; sleep 0.1; done
[ "$(sql "SELECT status FROM pg_stat_wal_receiver")" = streaming ] || fail "the rebuilt ${f.from.host} does not stream from ${f.to.host}"
echo replica > ${ROLE_MARKER}
say "resume: ${f.from.host}, promoted by an aborted attempt, rebuilt as a standby of ${f.to.host}"
`;
    }
    return `${header("resume", f.from.host, f)}
${pgHelpers(f.from, f.to)}
# Stopped cleanly at the switch point, this server can follow the incoming one's new timeline.
cluster status >/dev/null 2>&1 && cluster stop -m fast
touch "$data/standby.signal" && chown postgres:postgres "$data/standby.signal"
auto="$data/postgresql.auto.conf"
{ grep -v '^primary_conninfo' "$auto" 2>/dev/null || true; echo "primary_conninfo = '${conninfo}'"; } > "$auto.new"
chown postgres:postgres "$auto.new" && mv "$auto.new" "$auto"
cluster start || fail "${f.from.host} does not start as a standby: $(tail -n 3 /var/log/postgresql/postgresql-$ver-main.log)"
for _ in $(seq 1 100); do [ "$(sql "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null)" = streaming ] && break; sleep 0.1; done
[ "$(sql "SELECT status FROM pg_stat_wal_receiver")" = streaming ] \\
    || fail "${f.from.host} does not stream from ${f.to.host}: $(tail -n 3 /var/log/postgresql/postgresql-$ver-main.log)"
echo replica > ${ROLE_MARKER}
rm -f ${freezeMarker(f)}
${f.cache ? `${cacheHelpers()}\n${cacheFollow(f)}\n` : ""}# Streaming on the new timeline is only possible when this server holds nothing the incoming one lacks.
lost=0
record="{\\"event\\":\\"cutover\\",\\"at\\":$(now_ms),\\"from\\":\\"${f.from.site}\\",\\"to\\":\\"${f.to.site}\\",\\"strategy\\":\\"freeze\\",\\"engine\\":\\"postgres\\",\\"attempt\\":${f.settings.attempt},\\"needed\\":true,\\"lostTransactions\\":$lost${audit ? `,${audit}` : ""}}"
echo "$record" >> ${AUDIT_LOG}
say "audit $record"
`;
}
