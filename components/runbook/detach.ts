// The write window, detached from the operator's SSH session. The switch step starts the
// window (a whole script) with setsid, no terminal, its stdin the step's secrets (a 0600
// file the window removes once read) and its output in files, then follows it. A session
// lost mid-window (a laptop's network, a second Ctrl-C, a cancelled CI job) ends the step,
// never the window; the next run of the step follows a window still running, or reports
// one that finished while nobody followed it, before it starts anything new.
//   /var/lib/cutover/switch/<from>-<to>-<attempt>/  window.sh pid out err result why
// result: "aborted" | "committed" (t4) | "routed" (t5) | "committed-not-routed"
import type { DbEnd } from "./render";

/** Where the detached windows keep their script, pid, output and result, per flip and attempt. */
export const SWITCH_RUNS = "/var/lib/cutover/switch";

export interface DetachedFlip {
    from: DbEnd;
    to: DbEnd;
    settings: { attempt: number };
}

/**
 * Step side, first: an earlier run of this flip. Needs `say`, `fail`, `mark`, `now_ms` and
 * `route_edges` (routing every edge to the incoming site, strict). `stale` is a shell test
 * that holds when a committed run found here belongs to an earlier flip (rolled back since).
 */
export function followEarlierRun(f: DetachedFlip, stale: string): string {
    return `runs=${SWITCH_RUNS}
run=$runs/${f.from.site}-${f.to.site}-${f.settings.attempt}
install -d -m 700 "$runs"
window_running() { grep -qaF "$run/window.sh" "/proc/$(cat "$run/pid" 2>/dev/null)/cmdline" 2>/dev/null; }
archive() {
    mv "$run" "$run.done-$(now_ms)"
    { ls -1dt "$runs"/*.done-* 2>/dev/null || true; } | tail -n +11 | xargs -r rm -rf
}
# Follows the window to its end (from its first line: the marks are this step's output) and
# ends with its result. A run folder is archived only when a later run finds it finished.
follow() {
    local result why
    tail -n +1 -s 0.05 --pid="$(cat "$run/pid")" -f "$run/out" || true
    # tail also ends when this session is gone (SIGPIPE): the window goes on without it.
    window_running && exit 1
    result=$(cat "$run/result" 2>/dev/null || true)
    why=$(cat "$run/why" 2>/dev/null || true)
    [ "$result" = routed ] && exit 0
    # How far it got, and what it said on stderr, go with the failure.
    { grep '^runbook: switch t' "$run/out" || echo "runbook: the window reached no mark"; } | tail -n 3 >&2
    grep -v '^$' "$run/err" | tail -n 20 >&2 || true
    case "$result" in
        aborted) fail "$why" ;;
        committed|committed-not-routed)
            say "switch: the database switch committed (${f.to.host} is the primary); routing the edges again"
            route_edges
            mark 5 routed
            exit 0 ;;
        *) fail "the window (pid $(cat "$run/pid")) ended without a result: killed before it could abort; check which database is writable on ${f.to.host} and ${f.from.host} before running pulumi up again" ;;
    esac
}
if [ -s "$run/pid" ]; then
    if window_running; then
        say "switch: the window of an earlier run of this flip is still running (its session was lost): following it"
        follow
    fi
    case "$(cat "$run/result" 2>/dev/null || true)" in
        routed|committed|committed-not-routed)
            if ${stale}; then
                archive # from an earlier flip of the same attempt: rolled back since
            else
                say "switch: an earlier run of this flip committed while nobody followed it (its session was lost); its output:"
                follow
            fi ;;
        aborted)
            say "switch: an earlier run of this flip aborted: $(cat "$run/why" 2>/dev/null || true); checking everything again"
            archive ;;
        *)
            say "switch: an earlier run of this flip ended without a result (killed); checking everything again"
            archive ;;
    esac
fi`;
}

/** Step side, last: start `window` detached with this step's secrets (\`secrets_in\`, if any) and follow it. */
export function startWindow(window: string): string {
    return `rm -rf "$run"
install -d -m 700 "$run"
( umask 077; printf '%s\\n' "\${secrets_in:-}" > "$run/secrets" )
cat > "$run/window.sh" <<'CUTOVER_WINDOW'
${window.trimEnd()}
CUTOVER_WINDOW
setsid bash "$run/window.sh" "$run" < "$run/secrets" > "$run/out" 2> "$run/err" &
for _ in $(seq 1 100); do [ -s "$run/pid" ] && break; sleep 0.02; done
[ -s "$run/pid" ] || fail "the switch window did not start: $(tail -n 5 "$run/err")"
follow`;
}

/**
 * Window side, first: its pid, result and failure reporting. `fail` records why (the step
 * reports it as "switch on <host>: <why>"); before the commit (\`committed=0\`) it is an
 * abort, after it only routing is left.
 */
export function windowPrelude(f: DetachedFlip): string {
    return `#!/bin/bash
# cutover runbook: the write window of the switch on ${f.to.host} (${f.from.site} -> ${f.to.site}, attempt ${f.settings.attempt}), rendered by cutover.
set -euo pipefail
export LC_ALL=C
run=$1
echo $$ > "$run/pid"
now_ms() { date +%s%3N; }
say() { echo "runbook: $*"; }
started=$(now_ms)
committed=0
fail() {
    echo "$*" > "$run/why"
    if [ "$committed" = 1 ]; then echo committed-not-routed > "$run/result"; else echo aborted > "$run/result"; fi
    exit 1
}`;
}

/** Window side, after its secrets were read: the file goes; hangups, TERM/INT and unguarded failures get their meaning. Needs `abort`. */
export function windowTraps(): string {
    return `rm -f "$run/secrets"
# Losing the operator must not end the window half way; nor may a command that fails
# unguarded end it without the abort (before the commit) or a result (after it).
trap '' HUP PIPE
trap '[ "$committed" = 1 ] || abort "stopped by a signal"' TERM INT
on_error() {
    trap - ERR
    [ "$committed" = 1 ] && fail "a command failed at line $1 of $run/window.sh"
    abort "a command failed at line $1 of $run/window.sh"
}
trap 'on_error $LINENO' ERR`;
}

/** Window side, at t4 and t5. */
export const WINDOW_COMMITTED = `committed=1
echo committed > "$run/result"`;
export const WINDOW_ROUTED = `echo routed > "$run/result"`;
