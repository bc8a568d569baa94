// The cutover runbook's host scripts (DESIGN.md, "The cutover: one value"). Each step is
// one remote command; the steps run in order (each dependsOn the one before) when
// `cutover:live` changes:
//   precheck (incoming db)  postpone flag, pre-check hook, replication healthy -> veto
//   hold     (every edge)   hold writes (deadline), drain the outgoing backend
//   freeze   (outgoing db)  read-only, armed to unfreeze by itself at the deadline
//   catchup  (incoming db)  wait until every outgoing transaction is applied; parity
//   promote  (incoming db)  stop replicating, writable; validate, else demote again
//   commit   (outgoing db)  disarm the deadline: from here on there is no way back
//   route    (every edge)   route to the incoming site, release the held writes
//   resume   (outgoing db)  replicate from the incoming site; audit record
// A failure before `commit` aborts: the freeze ends at its deadline by itself (the
// outgoing database is writable again, the edges release the held writes to it).
// Every step checks what it needs on the hosts themselves rather than trusting a
// previous step, so a stale or repeated step can never promote a diverged replica.
import { DB_TLS_DIR, FLAVORS, FlavorSpec, MysqlFlavor, REPL_USER, ROLE_MARKER } from "../database/mysql";
import { EDGE_SOCKET, siteBackend } from "../edge/render";
import { readSecrets, scriptHeader } from "../script";

/** Where the runbook keeps its state on a database host. */
export const RUNBOOK_DIR = "/var/lib/cutover";
const FREEZE_STATE = "/run/cutover/freeze";
const FREEZE_LOCK = "/run/cutover/freeze.lock";
const WATCHDOG = "/run/cutover/unfreeze-at-deadline";
export const AUDIT_LOG = "/var/log/cutover/audit.jsonl";
/** Written by the route step: the site a (re)loaded edge serves. */
export const EDGE_LIVE_FILE = "/etc/haproxy/cutover-live";

export type Strategy = "freeze" | "dual-primary";

export interface RunbookSettings {
    strategy: Strategy;
    /** How long the outgoing database may stay read-only before it unfreezes by itself. */
    freezeMs: number;
    /** How long catch-up may wait for the incoming replica (inside the freeze). */
    catchupMs: number;
    /** Pre-check: the incoming replica may be at most this far behind. */
    maxLagSeconds: number;
    /** While this file exists on the incoming database host, the cutover waits (armed, postponed). */
    postponeFile: string;
    postponeMinutes: number;
    /** Shell command on the incoming database host; a non-zero exit vetoes the cutover. */
    precheck?: string;
    /** Shell command on the incoming database host after promotion; a non-zero exit aborts. */
    validate?: string;
    /** Tables ("db.table") compared with CHECKSUM TABLE after catch-up. */
    parity: string[];
    /** Bump to run the steps again after an aborted attempt. */
    attempt: number;
}

export interface DbEnd {
    site: string;
    host: string;
    meshAddress: string;
    port: number;
}

/** One run of the runbook: from the outgoing to the incoming site. */
export interface Flip {
    from: DbEnd;
    to: DbEnd;
    flavor: MysqlFlavor;
    settings: RunbookSettings;
}

/** How long the edges hold writes: past the freeze deadline, so an abort unfreezes the database first. */
export function holdMs(s: RunbookSettings): number {
    return s.freezeMs + 1000;
}

function header(step: string, host: string, f: Flip): string {
    return `${scriptHeader(step, host, `cutover runbook: ${step} on ${host} (${f.from.site} -> ${f.to.site}, attempt ${f.settings.attempt})`)}
now_ms() { date +%s%3N; }
say() { echo "runbook: $*"; }
started=$(now_ms)`;
}

/**
 * The shell helpers of a database step: `sql` here, `remote` on the other site's server
 * over verified TLS as the replication user (password from stdin), and `missing <have>
 * <want>`: how many transactions of the GTID set <want> the set <have> lacks.
 */
function dbHelpers(f: FlavorSpec, flavor: MysqlFlavor, other: DbEnd): string {
    const tls = `--ssl-ca=${DB_TLS_DIR}/ca.pem ${flavor === "mariadb" ? "--ssl --ssl-verify-server-cert" : "--ssl-mode=VERIFY_IDENTITY"}`;
    const missing = flavor === "mariadb"
        // MariaDB positions are domain-server-seq lists; seq numbers grow per domain.
        ? `missing() { awk -v have="$1" -v want="$2" 'BEGIN { n = split(have, h, ","); for (i = 1; i <= n; i++) { split(h[i], p, "-"); if (p[1] != "") got[p[1]] = p[3] } m = split(want, w, ","); miss = 0; for (i = 1; i <= m; i++) { split(w[i], p, "-"); if (p[1] == "") continue; d = p[3] - ((p[1] in got) ? got[p[1]] : 0); if (d > 0) miss += d } print miss }'; }`
        // MySQL: GTID_SUBTRACT, then count the transactions in its intervals.
        : `missing() { sql "SELECT GTID_SUBTRACT('$2', '$1')" | tr -d ' \\n' | tr ',' '\\n' | awk -F: '{ for (i = 2; i <= NF; i++) { n = split($i, r, "-"); c += (n == 2 ? r[2] - r[1] + 1 : 1) } } END { print c + 0 }'; }`;
    return `${readSecrets({ "peer-password": "peer_password" })}
sql() { ${f.client} --batch --skip-column-names -e "$1"; }
opts=$(mktemp)
trap 'rm -f "$opts"' EXIT
printf '[client]\\nuser=${REPL_USER}\\npassword=%s\\n' "$peer_password" > "$opts"
remote() { ${f.client} --defaults-extra-file="$opts" ${tls} --connect-timeout=2 -h ${other.meshAddress} -P ${other.port} --batch --skip-column-names -e "$1"; }
replica_field() { ${f.client} -e "${f.status}\\G" | awk -F': ' -v k="$1" '{ sub(/^ +/, "", $1) } $1 == k { print $2 }'; }
${missing}
pos_here() { sql "${flavor === "mariadb" ? "SELECT @@gtid_current_pos" : "SELECT @@gtid_executed"}" | tr -d '\\n'; }
pos_there() { remote "${f.position}" | tr -d '\\n'; }
install -d -m 755 ${RUNBOOK_DIR} /run/cutover /var/log/cutover`;
}

/** Replicate from `src` (attaching at this server's own position: it holds everything up to the switch). */
function attachTo(f: FlavorSpec, src: DbEnd): string {
    return `sql "${f.resetReplica}" 2>/dev/null || true
    ${f.attachPrelude}
    sql "${f.changeSource({ host: src.host, meshAddress: src.meshAddress, port: src.port }, `${DB_TLS_DIR}/ca.pem`)}"
    sql "${f.startReplica}"`;
}

/**
 * precheck, on the incoming database host. Prints `needed=1` when the incoming server is
 * still a replica (the database part runs), `needed=0` when it is already the primary
 * and holds everything the outgoing one has (only routing is left).
 */
export function precheckScript(f: Flip): string {
    const spec = FLAVORS[f.flavor];
    const s = f.settings;
    const fields = spec.statusFields;
    const lagCheck = `lag=$(replica_field ${fields.lag})
    [ "$(replica_field ${fields.io})" = Yes ] || fail "vetoed: ${f.to.host} is not receiving from ${f.from.host}: $(replica_field ${fields.ioError})"
    [ "$(replica_field ${fields.sql})" = Yes ] || fail "vetoed: ${f.to.host} is not applying: $(replica_field ${fields.sqlError})"
    [ -n "$lag" ] && [ "$lag" != NULL ] && [ "$lag" -le ${s.maxLagSeconds} ] || fail "vetoed: ${f.to.host} is \${lag:-?} s behind ${f.from.host}; at most ${s.maxLagSeconds} s (cutover:runbook.maxLagSeconds)"`;
    const replicaCase = s.strategy === "dual-primary"
        ? `if [ -z "$(replica_field ${fields.host})" ]; then fail "vetoed: strategy dual-primary, but ${f.to.host} does not replicate from ${f.from.host}"; fi
    ${lagCheck}
    remote "SELECT 1" >/dev/null || fail "vetoed: cannot reach ${f.from.host} over the mesh"
    needed=1`
        : `if [ -n "$(replica_field ${fields.host})" ]; then
    ${lagCheck}
    remote "SELECT 1" >/dev/null || fail "vetoed: cannot reach ${f.from.host} over the mesh"
    needed=1
elif there=$(pos_there 2>/dev/null); then
    # Already primary: fine only if it holds every transaction of the outgoing server.
    lacks=$(missing "$(pos_here)" "$there")
    [ "$lacks" = 0 ] || fail "${f.to.host} is a primary but lacks $lacks transaction(s) of ${f.from.host} (an earlier attempt aborted after promotion): set cutover:live back to ${f.from.site} and run pulumi up (${f.to.host} becomes a replica again), then flip again"
    needed=0
elif [ "$(cat ${ROLE_MARKER} 2>/dev/null)" = primary ]; then
    fail "${f.to.host} was promoted by a cutover, but ${f.from.host} cannot be reached to check it holds every transaction; restore the mesh and run pulumi up again"
else
    needed=0
fi`;
    return `${header("precheck", f.to.host, f)}
${dbHelpers(FLAVORS[f.flavor], f.flavor, f.from)}
# Armed but postponed (gh-ost's postpone flag): wait while the flag file exists.
waited=0
while [ -e ${s.postponeFile} ]; do
    [ $((waited % 30)) = 0 ] && say "postponed: remove ${s.postponeFile} on ${f.to.host} to proceed (waited $waited s of ${s.postponeMinutes * 60})"
    [ "$waited" -lt ${s.postponeMinutes * 60} ] || fail "still postponed after ${s.postponeMinutes} min (${s.postponeFile}); nothing was changed"
    sleep 1; waited=$((waited + 1))
done
${s.precheck ? `hook_err=$(mktemp)
( ${s.precheck} ) >/dev/null 2>"$hook_err" || fail "vetoed by cutover:runbook.precheck (exit $?): $(tail -n 5 "$hook_err")"
rm -f "$hook_err"` : "# No pre-check hook configured (cutover:runbook.precheck)."}
${replicaCase}
say "precheck needed=$needed position=$(pos_here) in $(( $(now_ms) - started )) ms"
`;
}

/** hold, on each edge: hold writes, then wait (bounded) until the outgoing backend has no request in flight. */
export function holdScript(host: string, f: Flip, needed: boolean): string {
    if (!needed) return nothingToDo("hold", host, f);
    return `${header("hold", host, f)}
admin() { echo "$1" | socat -t 2 - UNIX-CONNECT:${EDGE_SOCKET}; }
[ -S ${EDGE_SOCKET} ] || fail "no HAProxy admin socket at ${EDGE_SOCKET}"
answer=$(admin "cutover hold ${holdMs(f.settings)}")
[ "$answer" = "hold on" ] || fail "cutover hold answered: $answer"
# Drain: requests already inside the outgoing site finish (at most 1 s).
for _ in $(seq 1 100); do
    busy=$(admin "show stat" | awk -F, '$1 == "${siteBackend(f.from.site)}" && $2 == "BACKEND" { print $5 }')
    [ "\${busy:-0}" = 0 ] && break
    sleep 0.01
done
say "hold on until $(( $(now_ms) + ${holdMs(f.settings)} )) in-flight=\${busy:-0} in $(( $(now_ms) - started )) ms"
`;
}

/** The watchdog the freeze arms: unfreezes at the deadline unless the cutover committed. */
export function watchdogScript(f: Flip): string {
    const spec = FLAVORS[f.flavor];
    return `#!/bin/bash
# Rendered by cutover: ends the freeze of ${f.from.host} at its deadline unless committed.
set -euo pipefail
sleep "$1"
exec 9>${FREEZE_LOCK}
flock 9
read -r state deadline < ${FREEZE_STATE} || exit 0
[ "$state" = frozen ] || exit 0
for _ in 1 2 3 4 5; do ${spec.client} -e "SET GLOBAL read_only = OFF" && break; sleep 0.2; done
echo "aborted $(date +%s%3N)" > ${FREEZE_STATE}
echo "{\\"event\\":\\"aborted\\",\\"at\\":$(date +%s%3N),\\"from\\":\\"${f.from.site}\\",\\"to\\":\\"${f.to.site}\\",\\"attempt\\":${f.settings.attempt},\\"why\\":\\"freeze deadline passed before commit\\"}" >> ${AUDIT_LOG}
`;
}

/** freeze, on the outgoing database host: read-only, with a deadline that unfreezes it by itself. */
export function freezeScript(f: Flip, needed: boolean): string {
    const spec = FLAVORS[f.flavor];
    if (!needed) return nothingToDo("freeze", f.from.host, f);
    return `${header("freeze", f.from.host, f)}
sql() { ${spec.client} --batch --skip-column-names -e "$1"; }
install -d -m 755 /run/cutover /var/log/cutover
cat > ${WATCHDOG} <<'CUTOVER_WATCHDOG'
${watchdogScript(f).trim()}
CUTOVER_WATCHDOG
chmod 700 ${WATCHDOG}
# A watchdog of an earlier attempt must not end this freeze.
kill "$(cat /run/cutover/watchdog.pid 2>/dev/null)" 2>/dev/null || true
exec 9>${FREEZE_LOCK}
flock 9
deadline=$(( $(now_ms) + ${f.settings.freezeMs} ))
echo "frozen $deadline" > ${FREEZE_STATE}
# read_only waits for running commits; new writes (but replication's) fail from here on.
sql "SET GLOBAL read_only = ON" || { rm -f ${FREEZE_STATE}; fail "SET GLOBAL read_only = ON failed"; }
flock -u 9
setsid ${WATCHDOG} ${f.settings.freezeMs / 1000} </dev/null >/dev/null 2>&1 &
echo $! > /run/cutover/watchdog.pid
say "freeze read_only=1 deadline=$deadline position=$(sql '${spec.position}' | tr -d '\\n') in $(( $(now_ms) - started )) ms"
`;
}

/** catchup, on the incoming database host: wait (bounded) for every outgoing transaction, then compare the parity tables. */
export function catchupScript(f: Flip, needed: boolean): string {
    const spec = FLAVORS[f.flavor];
    if (!needed) return nothingToDo("catchup", f.to.host, f);
    const parity = f.settings.parity.map((t) => `c_here=$(sql "CHECKSUM TABLE ${t}" | awk '{ print $2 }'); c_there=$(remote "CHECKSUM TABLE ${t}" | awk '{ print $2 }')
[ "$c_here" = "$c_there" ] || fail "parity: CHECKSUM TABLE ${t} is $c_here on ${f.to.host} but $c_there on ${f.from.host}"
say "parity ${t} checksum=$c_here"`);
    return `${header("catchup", f.to.host, f)}
${dbHelpers(spec, f.flavor, f.from)}
[ "$(remote 'SELECT @@read_only')" = 1 ] || fail "${f.from.host} is not frozen (its freeze ended at the deadline?): aborting"
want=$(pos_there)
deadline=$(( started + ${f.settings.catchupMs} ))
while :; do
    lacks=$(missing "$(pos_here)" "$want")
    [ "$lacks" = 0 ] && break
    [ "$(now_ms)" -lt "$deadline" ] || fail "${f.to.host} still lacks $lacks transaction(s) of ${f.from.host} after ${f.settings.catchupMs} ms (cutover:runbook.catchupMs): aborting, ${f.from.host} unfreezes at its deadline"
    sleep 0.01
done
${parity.length > 0 ? parity.join("\n") : "# No parity tables configured (cutover:runbook.parity): the GTID sets were compared."}
say "catchup waited=$(( $(now_ms) - started )) ms position=$want"
`;
}

/** promote, on the incoming database host: writable primary; validated, else demoted again before failing. */
export function promoteScript(f: Flip, needed: boolean): string {
    const spec = FLAVORS[f.flavor];
    if (!needed) return nothingToDo("promote", f.to.host, f);
    return `${header("promote", f.to.host, f)}
${dbHelpers(spec, f.flavor, f.from)}
[ "$(remote 'SELECT @@read_only')" = 1 ] || fail "${f.from.host} is not frozen (its freeze ended at the deadline?): not promoting"
lacks=$(missing "$(pos_here)" "$(pos_there)")
[ "$lacks" = 0 ] || fail "${f.to.host} lacks $lacks transaction(s) of ${f.from.host}: not promoting"
demote() {
    sql "SET GLOBAL read_only = ON" || true
    ${attachTo(spec, f.from)}
    echo replica > ${ROLE_MARKER}
    fail "$1; ${f.to.host} replicates from ${f.from.host} again, ${f.from.host} unfreezes at its deadline"
}
sql "${spec.resetReplica}; SET GLOBAL read_only = OFF" || demote "promotion failed"
echo primary > ${ROLE_MARKER}
[ "$(sql 'SELECT @@read_only')" = 0 ] || demote "validation: ${f.to.host} is still read-only"
${f.settings.validate ? `hook_err=$(mktemp)
( ${f.settings.validate} ) >/dev/null 2>"$hook_err" || demote "validation failed: cutover:runbook.validate exited non-zero: $(tail -n 5 "$hook_err" | tr '\\n' ' ')"` : "# No validation hook configured (cutover:runbook.validate)."}
say "promote primary=${f.to.host} lost=$lacks in $(( $(now_ms) - started )) ms"
`;
}

/** commit, on the outgoing database host: the point of no return; refused once the deadline has passed. */
export function commitScript(f: Flip, needed: boolean): string {
    if (!needed) return nothingToDo("commit", f.from.host, f);
    return `${header("commit", f.from.host, f)}
exec 9>${FREEZE_LOCK}
flock 9
read -r state deadline < ${FREEZE_STATE} || fail "no freeze on ${f.from.host}"
[ "$state" = frozen ] || fail "the freeze of ${f.from.host} ended (state $state $deadline) before the cutover committed: aborted; ${f.to.host} was promoted and is not served: set cutover:live back to ${f.from.site} and run pulumi up"
if [ "$(now_ms)" -gt "$deadline" ]; then
    ${FLAVORS[f.flavor].client} -e "SET GLOBAL read_only = OFF"
    echo "aborted $(now_ms)" > ${FREEZE_STATE}
    fail "the freeze deadline passed before the cutover committed: ${f.from.host} is writable again; set cutover:live back to ${f.from.site} and run pulumi up"
fi
echo "committed $(now_ms)" > ${FREEZE_STATE}
kill "$(cat /run/cutover/watchdog.pid 2>/dev/null)" 2>/dev/null || true
say "commit at $(now_ms) in $(( $(now_ms) - started )) ms"
`;
}

/** route, on each edge: serve the incoming site (also after a reload), release the held writes. */
export function routeScript(host: string, f: Flip): string {
    return `${header("route", host, f)}
admin() { echo "$1" | socat -t 2 - UNIX-CONNECT:${EDGE_SOCKET}; }
echo ${f.to.site} > ${EDGE_LIVE_FILE}.tmp && mv ${EDGE_LIVE_FILE}.tmp ${EDGE_LIVE_FILE}
if [ -S ${EDGE_SOCKET} ]; then
    answer=$(admin "cutover live ${f.to.site}")
    case "$answer" in "live ${f.to.site} "*) ;; *) fail "cutover live ${f.to.site} answered: $answer" ;; esac
    admin "cutover hold off" >/dev/null
    say "route live=${f.to.site} released in $(( $(now_ms) - started )) ms"
else
    say "route live=${f.to.site}: HAProxy is not running here yet; it starts with ${f.to.site}"
fi
`;
}

/**
 * resume, on the outgoing database host: it replicates from the incoming one, so flipping
 * back loses nothing; the audit record (with the count of lost transactions) is appended
 * here and printed for the stack output.
 */
export function resumeScript(f: Flip, needed: boolean, marks: Record<string, string>): string {
    const spec = FLAVORS[f.flavor];
    const fields = spec.statusFields;
    // Values come from earlier steps' output: only characters of GTID sets and numbers pass.
    const audit = Object.entries(marks).map(([k, v]) => `\\"${k}\\":\\"${v.replace(/[^A-Za-z0-9,:._-]/g, "")}\\"`).join(",");
    return `${header("resume", f.from.host, f)}
${dbHelpers(spec, f.flavor, f.to)}
${f.settings.strategy === "dual-primary" ? `# Dual-primary: writes still in flight from ${f.from.host} arrive by replication (bounded wait).
for _ in $(seq 1 ${Math.ceil(f.settings.catchupMs / 10)}); do [ "$(missing "$(pos_there)" "$(pos_here)")" = 0 ] && break; sleep 0.01; done` : `role=$(cat ${ROLE_MARKER} 2>/dev/null || true)
if [ "${needed ? 1 : 0}" = 1 ] || [ "$role" = primary ]; then
    # Everything this server holds is on the incoming one (checked at promotion): attach at its own position.
    sql "SET GLOBAL read_only = ON"
    if [ "$(replica_field ${fields.host})" != "${f.to.meshAddress}" ]; then
        ${attachTo(spec, f.to)}
    fi
    echo replica > ${ROLE_MARKER}
    rm -f ${FREEZE_STATE}
    for _ in $(seq 1 100); do [ "$(replica_field ${fields.io})" = Yes ] && [ "$(replica_field ${fields.sql})" = Yes ] && break; sleep 0.1; done
    [ "$(replica_field ${fields.io})" = Yes ] || fail "${f.from.host} does not receive from ${f.to.host}: $(replica_field ${fields.ioError})"
fi`}
# Lost: transactions of this (outgoing) server the incoming one lacks.
lost=$(missing "$(pos_there)" "$(pos_here)")
record="{\\"event\\":\\"cutover\\",\\"at\\":$(now_ms),\\"from\\":\\"${f.from.site}\\",\\"to\\":\\"${f.to.site}\\",\\"strategy\\":\\"${f.settings.strategy}\\",\\"attempt\\":${f.settings.attempt},\\"needed\\":${needed},\\"lostTransactions\\":$lost${audit ? `,${audit}` : ""}}"
echo "$record" >> ${AUDIT_LOG}
say "audit $record"
`;
}

/** A step with nothing to do in this run (the incoming site already is the primary). */
function nothingToDo(step: string, host: string, f: Flip): string {
    return `${header(step, host, f)}
say "${step}: nothing to do, ${f.to.host} already is the primary"
`;
}
