// The cutover runbook's host scripts (DESIGN.md, "The cutover: one value"). A flip of
// `cutover:live` runs three ordered remote commands (each dependsOn the one before):
//   precheck (incoming db)  postpone flag, pre-check hook, replication healthy, edges
//                           reachable; anything wrong vetoes before anything changes
//   switch   (incoming db)  t0 hold writes on every edge, drain; t1 freeze the outgoing
//                           database (read-only, with a MariaDB event that unfreezes it at
//                           the deadline); t2 catch up (bounded, on measured GTID sets) and
//                           parity; t3 promote and validate; t4 commit (drop the event);
//                           t5 route every edge to the incoming site and release
//   resume   (outgoing db)  replicate from the incoming site; audit record
// The whole write-holding window is one SSH session on the incoming database host,
// which reaches the outgoing database and the edges' admin sockets over the mesh: no
// SSH handshake happens while users' writes are held. A failure before t4 aborts at
// once (outgoing unfrozen, incoming demoted, edges released to the outgoing site); if
// the outgoing site cannot be reached, its event unfreezes it at the deadline and the
// edges release at theirs. Every step checks on the hosts what it needs, so a repeated
// or stale step can never promote a diverged replica.
import { createHash } from "crypto";
import { DB_TLS_DIR, FLAVORS, FlavorSpec, MysqlFlavor, REPL_USER, ROLE_MARKER, clientTls, localSqlHelpers } from "../database/mysql";
import { EDGE_ADMIN_PORT } from "../firewall/render";
import { installIfMissing, readSecrets, scriptHeader } from "../script";
import { cacheAbort, cacheCommit, cacheFence, cacheFollow, cacheHelpers, cachePrecheck, cacheSwitch } from "./cache";
import { WINDOW_COMMITTED, WINDOW_ROUTED, followEarlierRun, startWindow, windowPrelude, windowTraps } from "./detach";

/** The event that ends a freeze at its deadline unless the cutover commits (drops it). */
export const UNFREEZE_EVENT = "cutover.unfreeze_at_deadline";

/**
 * Freezes a MySQL/MariaDB server: read-only now, writable again at the deadline by an event.
 * Nothing of it reaches the binary log: the event is created with sql_log_bin off, and ON
 * COMPLETION PRESERVE keeps the scheduler from logging the DROP EVENT it runs for a spent
 * one-time event (a replica stops on that: "Unknown event ... DROP EVENT").
 */
export function freezeSql(seconds: number): string {
    return `SET SESSION sql_log_bin = 0; CREATE DATABASE IF NOT EXISTS cutover; DROP EVENT IF EXISTS ${UNFREEZE_EVENT}; CREATE EVENT ${UNFREEZE_EVENT} ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL ${seconds} SECOND ON COMPLETION PRESERVE DO SET GLOBAL read_only = OFF; SET GLOBAL read_only = ON`;
}
export const AUDIT_LOG = "/var/log/cutover/audit.jsonl";
/** The site a (re)loaded edge serves: written by the edge on `cutover live <site>` (the switch step), and once by its ensure-step. */
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
    /** How much longer than the freeze the edges hold writes: room for the outgoing database to be back (default in config). */
    holdMarginMs: number;
}

export interface DbEnd {
    site: string;
    host: string;
    meshAddress: string;
    port: number;
}

/** An edge host, reached on its admin socket over the mesh. */
export interface EdgeEnd {
    name: string;
    meshAddress: string;
}

/** One run of the runbook: from the outgoing to the incoming site. */
export interface Flip {
    from: DbEnd;
    to: DbEnd;
    /** Every edge of both sites. */
    edges: EdgeEnd[];
    flavor: MysqlFlavor;
    settings: RunbookSettings;
    /** Redis on the db host of both sites: switched in the same window (cache.ts; freeze strategy only). */
    cache: boolean;
}

/** How long the edges hold writes: past the freeze deadline (whole seconds, the event scheduler's), so an abort that cannot reach the database unfreezes it before the edges release. */
export function holdMs(s: RunbookSettings): number {
    return Math.ceil(s.freezeMs / 1000) * 1000 + s.holdMarginMs;
}

/**
 * The identity of one run of the flip, in every step's script: any change to the flip
 * (a setting, an edge, either end) changes all of them, so the precheck runs again first.
 * A change the precheck's script did not show would re-run only the later steps, with the
 * precheck's stale stdout from the cutover itself ("needed=1"): a freeze of a site that
 * already follows the other one.
 */
export function flipDigest(f: Pick<Flip, "from" | "to" | "settings" | "edges" | "cache">): string {
    const { from, to, settings, edges, cache } = f;
    return createHash("sha256").update(JSON.stringify({ from, to, settings, edges, cache })).digest("hex").slice(0, 16);
}

export function header(step: string, host: string, f: Pick<Flip, "from" | "to" | "settings" | "edges" | "cache">): string {
    return `${scriptHeader(step, host, `cutover runbook: ${step} on ${host} (${f.from.site} -> ${f.to.site}, attempt ${f.settings.attempt})`)}
# flip ${flipDigest(f)}: every step of this flip carries the same digest.
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
    const missing = flavor === "mariadb"
        // MariaDB positions are domain-server-seq lists; seq numbers grow per domain.
        ? `missing() { awk -v have="$1" -v want="$2" 'BEGIN { n = split(have, h, ","); for (i = 1; i <= n; i++) { split(h[i], p, "-"); if (p[1] != "") got[p[1]] = p[3] } m = split(want, w, ","); miss = 0; for (i = 1; i <= m; i++) { split(w[i], p, "-"); if (p[1] == "") continue; d = p[3] - ((p[1] in got) ? got[p[1]] : 0); if (d > 0) miss += d } print miss }'; }`
        // MySQL: GTID_SUBTRACT, then count the transactions in its intervals.
        : `missing() { sql "SELECT GTID_SUBTRACT('$2', '$1')" | tr -d ' \\n' | tr ',' '\\n' | awk -F: '{ for (i = 2; i <= NF; i++) { n = split($i, r, "-"); c += (n == 2 ? r[2] - r[1] + 1 : 1) } } END { print c + 0 }'; }`;
    const credentials = `${readSecrets({ "peer-password": "peer_password" })}
opts=$(mktemp)
# The option file holds a password: removed on every way out, a hangup or TERM included.
trap 'rm -f "$opts"' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
printf '[client]\\nuser=${REPL_USER}\\npassword=%s\\n' "$peer_password" > "$opts"`;
    return `${credentials}
${localSqlHelpers(f)}
remote() { ${f.client} --defaults-extra-file="$opts" ${clientTls(flavor)} --connect-timeout=2 -h ${other.meshAddress} -P ${other.port} --batch --skip-column-names -e "$1"; }
${missing}
pos_here() { sql "${flavor === "mariadb" ? "SELECT @@gtid_current_pos" : "SELECT @@gtid_executed"}" | tr -d '\\n'; }
pos_there() { remote "${f.position}" | tr -d '\\n'; }
install -d -m 755 "$(dirname ${ROLE_MARKER})" "$(dirname ${AUDIT_LOG})"`;
}

/** Replicate from `src` (attaching at this server's own position: it holds everything up to the switch). */
function attachTo(f: FlavorSpec, src: DbEnd): string {
    return `sql "${f.resetReplica}" 2>/dev/null || true
    ${f.attachPrelude}
    sql "${f.changeSource({ host: src.host, meshAddress: src.meshAddress, port: src.port }, `${DB_TLS_DIR}/ca.pem`)}"
    sql "${f.startReplica}"`;
}

/**
 * The precheck's start: wait while the postpone flag file exists (gh-ost's postpone flag),
 * then the runbook.precheck hook; either vetoes before anything changed.
 */
export function postponeAndPrecheck(f: Pick<Flip, "to" | "settings">): string {
    const s = f.settings;
    return `waited=0
while [ -e ${s.postponeFile} ]; do
    [ $((waited % 30)) = 0 ] && say "postponed: remove ${s.postponeFile} on ${f.to.host} to proceed (waited $waited s of ${s.postponeMinutes * 60})"
    [ "$waited" -lt ${s.postponeMinutes * 60} ] || fail "still postponed after ${s.postponeMinutes} min (${s.postponeFile}); nothing was changed"
    sleep 1; waited=$((waited + 1))
done
${s.precheck ? `hook_err=$(mktemp)
( ${s.precheck} ) >/dev/null 2>"$hook_err" || fail "vetoed by cutover:runbook.precheck (exit $?): $(tail -n 5 "$hook_err")"
rm -f "$hook_err"` : "# No pre-check hook configured (cutover:runbook.precheck)."}`;
}

/** How long an edge that does not answer is retried before the precheck vetoes: a mesh route re-forming after a reload takes seconds. */
export const EDGE_ANSWER_SECONDS = 20;

/** When the database part runs (needed=1): every edge must answer on its admin socket and be idle. */
export function edgesAnswer(waitSeconds = EDGE_ANSWER_SECONDS): string {
    return `if [ "$needed" = 1 ]; then
    for e in $EDGES; do
        answer=$(edge "\${e#*=}" "cutover live" 2>/dev/null || true)
        [ -n "$answer" ] || say "edge \${e%%=*} does not answer on \${e#*=}:${EDGE_ADMIN_PORT} yet; retrying for up to ${waitSeconds} s"
        until_s=$((SECONDS + ${waitSeconds}))
        while [ -z "$answer" ] && [ "$SECONDS" -lt "$until_s" ]; do
            sleep 1
            answer=$(edge "\${e#*=}" "cutover live" 2>/dev/null || true)
        done
        case "$answer" in
            "live "*" hold off") ;;
            "") fail "vetoed: cannot reach the edge \${e%%=*} (\${e#*=}:${EDGE_ADMIN_PORT}) over the mesh for ${waitSeconds} s" ;;
            *) fail "vetoed: the edge \${e%%=*} is busy: $answer" ;;
        esac
    done
fi`;
}

/**
 * precheck, on the incoming database host. Prints `needed=1` when the incoming server is
 * still a replica (the database part runs), `needed=0` when it is already the primary
 * and holds everything the outgoing one has (only routing is left).
 */
export function precheckScript(f: Flip): string {
    return `${header("precheck", f.to.host, f)}
${installIfMissing("socat", "socat")}
${dbHelpers(FLAVORS[f.flavor], f.flavor, f.from)}
# Armed but postponed (gh-ost's postpone flag): wait while the flag file exists.
${postponeAndPrecheck(f)}
${replicaChecks(f)}
${f.cache ? `${cacheHelpers()}\n${cachePrecheck(f)}\n` : ""}${edgeHelpers(f)}
${edgesAnswer()}
say "precheck needed=$needed position=$(pos_here) in $(( $(now_ms) - started )) ms"
`;
}

/**
 * What the incoming server must be before a switch, checked on the hosts; sets \`needed\`
 * (1: a healthy replica, the database part runs; 0: already the primary holding everything
 * of the outgoing server, only routing is left) or vetoes. Needs the database helpers.
 */
export function replicaChecks(f: Flip): string {
    const spec = FLAVORS[f.flavor];
    const s = f.settings;
    const fields = spec.statusFields;
    const lagCheck = `# A replica that just (re)connected needs a moment: wait up to 10 s for both threads.
    for _ in $(seq 1 100); do [ "$(replica_field ${fields.io})" = Yes ] && [ "$(replica_field ${fields.sql})" = Yes ] && break; sleep 0.1; done
    lag=$(replica_field ${fields.lag})
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
    return replicaCase;
}

/** Talking to the edges' admin sockets over the mesh (socat), for the precheck and the switch. */
export function edgeHelpers(f: Pick<Flip, "edges">): string {
    return `EDGES="${f.edges.map((e) => `${e.name}=${e.meshAddress}`).join(" ")}"
edge() { echo "$2" | socat -t 2 - TCP:$1:${EDGE_ADMIN_PORT},connect-timeout=2; }`;
}

/** t<n> lines: the switch's phases with their time, for the audit record and the timeline. */
export const MARK = `mark() { say "switch t$1 $2 at=$(now_ms) +$(( $(now_ms) - started ))ms \${3:-}"; }`;

/** Route every edge to the incoming site and release held writes (idempotent). `strict`: an unreachable edge fails. */
export function routeEdges(f: Pick<Flip, "to">, strict: boolean): string {
    return `for e in $EDGES; do
    answer=$(edge "\${e#*=}" "cutover live ${f.to.site}" 2>/dev/null || true)
    case "$answer" in
        "live ${f.to.site} "*) edge "\${e#*=}" "cutover hold off" >/dev/null ;;
        "") ${strict ? `fail "cannot reach the edge \${e%%=*} (\${e#*=}:${EDGE_ADMIN_PORT}) to route it to ${f.to.site}"` : `say "edge \${e%%=*} not running yet: it starts with the live site of its config"`} ;;
        *) fail "edge \${e%%=*} answered: $answer" ;;
    esac
done`;
}

/**
 * t0: every edge holds writes (each releases by itself at its deadline), then a drain of
 * at most 0.5 s while requests to the outgoing site are in flight. Needs \`edge\`, \`mark\`,
 * \`abort\` and sets \`held=1\`, \`busy\` (in flight when the drain ended).
 */
export function holdAndDrain(f: Pick<Flip, "from" | "settings">): string {
    const s = f.settings;
    return `# t0: hold writes on every edge (they release by themselves at the deadline), then drain.
for e in $EDGES; do
    answer=$(edge "\${e#*=}" "cutover hold ${holdMs(s)}" 2>/dev/null || true)
    [ "$answer" = "hold on" ] || abort "cannot hold writes on the edge \${e%%=*}: \${answer:-unreachable}"
    held=1
done
mark 0 held
drain_until=$(( $(now_ms) + 500 ))
while :; do
    busy=0
    # A failed read is never "idle": abort (release the edges) rather than exit under set -e.
    for e in $EDGES; do
        n=$(edge "\${e#*=}" "show stat" | awk -F, '$1 == "site_${f.from.site}" && $2 == "BACKEND" { print $5 }') \\
            || abort "cannot read the requests in flight on the edge \${e%%=*} while draining"
        busy=$((busy + \${n:-0}))
    done
    [ "$busy" = 0 ] || [ "$(now_ms)" -ge "$drain_until" ] && break
    sleep 0.01
done
`;
}

/**
 * switch, on the incoming database host. Routing only when nothing is left to switch, or
 * with dual-primary. Otherwise the step re-checks on the hosts everything the precheck
 * checked (a retry after a failure re-runs this step while the engine skips the unchanged
 * precheck), then runs the write window (t0..t5, `switchWindow`) detached from its SSH
 * session and follows it (detach.ts).
 */
export function switchScript(f: Flip, needed: boolean): string {
    const spec = FLAVORS[f.flavor];
    const s = f.settings;
    const retryChecks = `# A retried switch honours the postpone flag and the hook, as its precheck did.
${postponeAndPrecheck(f)}`;
    if (!needed || s.strategy === "dual-primary") {
        return `${header("switch", f.to.host, f)}
${edgeHelpers(f)}
${MARK}
${retryChecks}
${routeEdges(f, s.strategy === "dual-primary")}
mark 5 routed
`;
    }
    return `${header("switch", f.to.host, f)}
${dbHelpers(spec, f.flavor, f.from)}
${edgeHelpers(f)}
${MARK}
route_edges() {
    ${routeEdges(f, true).split("\n").join("\n    ")}
}
# A committed run found here is an earlier flip's when this server replicates again (rolled back since).
${followEarlierRun(f, `[ -n "$(replica_field ${spec.statusFields.host})" ]`)}

${retryChecks}
${replicaChecks(f)}
if [ "$needed" = 0 ]; then
    say "switch: ${f.to.host} is already the primary and holds everything of ${f.from.host}: routing only"
    ${routeEdges(f, false).split("\n").join("\n    ")}
    mark 5 routed
    exit 0
fi
${edgesAnswer()}

${startWindow(switchWindow(f))}
`;
}

/**
 * The MySQL/MariaDB write window t0..t5 on the incoming host, run detached by the switch
 * step (argument: its run folder; stdin: the step's secrets). Hangups are ignored; TERM or
 * INT before the commit aborts; after the commit only routing is left and it finishes.
 */
export function switchWindow(f: Flip): string {
    const spec = FLAVORS[f.flavor];
    const s = f.settings;
    // Every read of the other site goes through abort on failure (the link may be cut right now).
    const parity = s.parity.map((t) => `c_here=$(sql "CHECKSUM TABLE ${t}" | awk '{ print $2 }') || abort "parity: CHECKSUM TABLE ${t} failed on ${f.to.host}"
c_there=$(remote "CHECKSUM TABLE ${t}" | awk '{ print $2 }') || abort "parity: cannot read CHECKSUM TABLE ${t} from ${f.from.host}"
[ "$c_here" = "$c_there" ] || abort "parity: CHECKSUM TABLE ${t} is $c_here on ${f.to.host} but $c_there on ${f.from.host}"`);
    const freezeSeconds = Math.ceil(s.freezeMs / 1000);
    return `${windowPrelude(f)}
${dbHelpers(spec, f.flavor, f.from)}
${f.cache ? `${cacheHelpers()}\n` : ""}${edgeHelpers(f)}
${MARK}
held=0; frozen=0; promoted=0
# Before the commit every failure ends here: the outgoing site is live and writable again.
abort() {
    set +e
    trap - ERR
    if [ "$promoted" = 1 ]; then
        sql "SET GLOBAL read_only = ON"
        ${attachTo(spec, f.from)}
        echo replica > ${ROLE_MARKER}
    fi
    if [ "$frozen" = 1 ]; then
        remote "SET SESSION sql_log_bin = 0; DROP EVENT IF EXISTS ${UNFREEZE_EVENT}; SET GLOBAL read_only = OFF" >/dev/null 2>&1 \\
            || echo "switch: ${f.from.host} cannot be reached; its event unfreezes it at the deadline" >&2
    fi
${f.cache ? `    ${cacheAbort()}\n` : ""}    if [ "$held" = 1 ]; then
        for e in $EDGES; do edge "\${e#*=}" "cutover hold off" >/dev/null 2>&1 || echo "switch: edge \${e%%=*} releases its held writes at its deadline" >&2; done
    fi
    fail "$1; aborted: ${f.from.site} stays live and writable$([ "$promoted" = 1 ] && echo ", ${f.to.host} replicates from ${f.from.host} again")"
}
${windowTraps()}

${holdAndDrain(f)}

# t1: freeze the outgoing database; its event unfreezes it at the deadline unless dropped at the commit.
# deadline: the earliest the event may fire.
deadline=$(( $(now_ms) + ${freezeSeconds * 1000} - 1000 ))
remote "${freezeSql(freezeSeconds)}" \\
    || abort "freezing ${f.from.host} failed"
frozen=1
want=$(pos_there) || abort "cannot read the position of ${f.from.host}"
mark 1 frozen "in-flight=$busy position=$want"

# t2: catch up, judged on the GTID sets (bounded), then parity.
caught_until=$(( $(now_ms) + ${s.catchupMs} ))
caught_from=$(now_ms)
while :; do
    lacks=$(missing "$(pos_here)" "$want")
    [ "$lacks" = 0 ] && break
    [ "$(now_ms)" -lt "$caught_until" ] || abort "${f.to.host} still lacks $lacks transaction(s) of ${f.from.host} after ${s.catchupMs} ms (cutover:runbook.catchupMs)"
    sleep 0.01
done
${parity.length > 0 ? parity.join("\n") : "# No parity tables configured (cutover:runbook.parity): the GTID sets were compared."}
${f.cache ? `${cacheSwitch(f)}\n` : ""}mark 2 caught-up "waited=$(( $(now_ms) - caught_from ))${f.cache ? " cache-offset=$cache_want" : ""}"

# t3: promote, then validate.
promoted=1
sql "${spec.resetReplica}; SET GLOBAL read_only = OFF" || abort "promotion failed"
echo primary > ${ROLE_MARKER}
[ "$(sql 'SELECT @@read_only')" = 0 ] || abort "validation: ${f.to.host} is still read-only"
${validateHook(s)}
mark 3 promoted

${f.cache ? `${cacheFence(f)}\n` : ""}# t4: commit (the point of no return): drop the unfreeze event; still frozen means nobody wrote there since.
remote "SET SESSION sql_log_bin = 0; DROP EVENT IF EXISTS ${UNFREEZE_EVENT}" || abort "cannot reach ${f.from.host} to commit"
[ "$(remote 'SELECT @@read_only')" = 1 ] || abort "the freeze of ${f.from.host} ended at its deadline before the commit"
# After the commit nothing aborts: a position that cannot be read is reported as unknown, never as 0.
if there=$(pos_there); then lost=$(missing "$(pos_here)" "$there"); else lost=unknown; fi
held=1; frozen=0; promoted=0
${WINDOW_COMMITTED}
mark 4 committed "lost=$lost"
${f.cache ? `${cacheCommit()}\n` : ""}
# t5: route every edge to the incoming site and release the held writes there.
${routeEdges(f, true)}
${WINDOW_ROUTED}
mark 5 routed
`;
}

/** The runbook.validate hook after promotion (needs `abort`); a comment when none is configured. */
export function validateHook(s: RunbookSettings): string {
    return s.validate
        ? `hook_err=$(mktemp)
( ${s.validate} ) >/dev/null 2>"$hook_err" || abort "validation failed: cutover:runbook.validate exited non-zero: $(tail -n 5 "$hook_err" | tr '\\n' ' ')"`
        : "# No validation hook configured (cutover:runbook.validate).";
}

/** The switch's marks as JSON fields of the audit record (escaped for a double-quoted shell string). */
export function auditFields(marks: Record<string, string>): string {
    // Values come from earlier steps' output: only characters of GTID sets, LSNs and numbers pass.
    return Object.entries(marks).map(([k, v]) => `\\"${k}\\":\\"${v.replace(/[^A-Za-z0-9,:._/-]/g, "")}\\"`).join(",");
}

/**
 * resume, on the outgoing database host: it replicates from the incoming one, so flipping
 * back loses nothing; the audit record (with the count of lost transactions) is appended
 * here and printed for the stack output.
 */
export function resumeScript(f: Flip, needed: boolean, marks: Record<string, string>): string {
    const audit = auditFields(marks);
    if (!needed && f.settings.strategy === "freeze") {
        // Nothing was switched in this run; only a server an aborted attempt promoted is reattached.
        return `${header("resume", f.from.host, f)}
if [ "$(cat ${ROLE_MARKER} 2>/dev/null || true)" != primary ]; then say "resume: nothing to do"; exit 0; fi
${resumeBody(f, needed, audit)}`;
    }
    return `${header("resume", f.from.host, f)}
${resumeBody(f, needed, audit)}`;
}

function resumeBody(f: Flip, needed: boolean, audit: string): string {
    const spec = FLAVORS[f.flavor];
    const fields = spec.statusFields;
    return `${dbHelpers(spec, f.flavor, f.to)}
${f.settings.strategy === "dual-primary" ? `# Dual-primary: writes still in flight from ${f.from.host} arrive by replication (bounded wait).
# This server's position first: the incoming one only grows, and sends this one its own writes.
for _ in $(seq 1 ${Math.ceil(f.settings.catchupMs / 10)}); do here=$(pos_here); [ "$(missing "$(pos_there)" "$here")" = 0 ] && break; sleep 0.01; done` : `role=$(cat ${ROLE_MARKER} 2>/dev/null || true)
if ${needed ? "true" : '[ "$role" = primary ]'}; then
    # Everything this server holds is on the incoming one (checked at promotion): attach at its own position.
    sql "SET GLOBAL read_only = ON"
    if [ "$(replica_field ${fields.host})" != "${f.to.meshAddress}" ]; then
        ${attachTo(spec, f.to)}
    fi
    echo replica > ${ROLE_MARKER}
    for _ in $(seq 1 100); do [ "$(replica_field ${fields.io})" = Yes ] && [ "$(replica_field ${fields.sql})" = Yes ] && break; sleep 0.1; done
    [ "$(replica_field ${fields.io})" = Yes ] || fail "${f.from.host} does not receive from ${f.to.host}: $(replica_field ${fields.ioError})"
${f.cache ? `# (not indented: heredocs)\n${cacheHelpers()}\n${cacheFollow(f)}\n` : ""}fi`}
# Lost: transactions of this (outgoing) server the incoming one lacks. This server first:
# it may receive the incoming one's new writes meanwhile, never the other way round.
here=$(pos_here)
lost=$(missing "$(pos_there)" "$here")
record="{\\"event\\":\\"cutover\\",\\"at\\":$(now_ms),\\"from\\":\\"${f.from.site}\\",\\"to\\":\\"${f.to.site}\\",\\"strategy\\":\\"${f.settings.strategy}\\",\\"attempt\\":${f.settings.attempt},\\"needed\\":${needed},\\"lostTransactions\\":$lost${audit ? `,${audit}` : ""}}"
echo "$record" >> ${AUDIT_LOG}
say "audit $record"
`;
}
