// Redis in the cutover runbook, for a Redis that lives on the db host of both sites (the
// incoming db host is then also the replica's end of the tunnel to the outgoing Redis):
//   precheck  the incoming Redis follows the outgoing one and its link is up
//   switch    pause writes on the outgoing Redis until the freeze deadline (CLIENT PAUSE
//             WRITE: nothing new enters its replication stream), wait until the incoming
//             one processed the whole stream (offsets, bounded by catchupMs), promote it
//             (REPLICAOF NO ONE); before the commit fence the outgoing one (with
//             min-replicas-to-write 1 and no replica left it refuses writes) and check
//             that it took nothing since the pause (its write counter, since replication
//             PINGs move the offset even while paused): a pause that ended first (its
//             deadline passed on a slow switch) aborts rather than lose those writes
//   resume    the outgoing Redis follows the incoming one through a tunnel to it
// An abort before the commit re-attaches the incoming Redis and unpauses the outgoing one.
import { CACHE_ROLE_MARKER, REDIS_AUTH_CONF, REDIS_PORT, REDIS_ROLE_CONF, REDIS_TUNNEL_PORT, STUNNEL_CONF, STUNNEL_PID, redisAuthLine, redisRoleConf, stunnelConf } from "../database/redis";
import { PUT_FILE, readSecrets } from "../script";
import { DbEnd, RunbookSettings } from "./render";

export interface CacheFlip {
    from: DbEnd;
    to: DbEnd;
    settings: RunbookSettings;
}

/**
 * `rlocal`: this host's Redis; `rother`: the other site's, through this host's tunnel (their
 * passwords from stdin, in variables of their own: a MySQL step's peer_password is the database's).
 */
export function cacheHelpers(): string {
    return `${readSecrets({ "cache-password": "cache_password", "cache-peer-password": "cache_peer_password" })}
rlocal() { REDISCLI_AUTH="$cache_password" timeout 5 redis-cli --no-auth-warning -h 127.0.0.1 -p ${REDIS_PORT} "$@"; }
rother() { REDISCLI_AUTH="$cache_peer_password" timeout 3 redis-cli --no-auth-warning -h 127.0.0.1 -p ${REDIS_TUNNEL_PORT} "$@"; }
# rinfo <rlocal|rother> <field> [section]: a field of INFO replication (or the section given; "" when unreachable).
rinfo() { { $1 INFO "\${3:-replication}" 2>/dev/null || true; } | tr -d '\\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }
install -d -m 755 "$(dirname ${CACHE_ROLE_MARKER})"`;
}

/** precheck, incoming host, when the database part runs: a veto unless Redis replicates from the outgoing site. */
export function cachePrecheck(f: CacheFlip): string {
    return `if [ "$needed" = 1 ]; then
    [ "$(rinfo rlocal role)" = slave ] && [ "$(rinfo rlocal master_port)" = ${REDIS_TUNNEL_PORT} ] \\
        || fail "vetoed: Redis on ${f.to.host} is not a replica of ${f.from.host}'s (role: $(rinfo rlocal role))"
    [ "$(rinfo rlocal master_link_status)" = up ] || fail "vetoed: Redis on ${f.to.host} has no link to ${f.from.host}'s (link: $(rinfo rlocal master_link_status))"
    [ "$(rinfo rother role)" = master ] || fail "vetoed: Redis on ${f.from.host} does not answer as a primary through the tunnel"
fi`;
}

/**
 * switch, incoming host, inside the window (after the database caught up, before it is
 * promoted). Needs `deadline` (epoch ms, the freeze's), `abort` and `now_ms`.
 */
export function cacheSwitch(f: CacheFlip): string {
    return `# Redis: no new writes on ${f.from.host} until the freeze deadline, then everything it has here, then promoted.
cache_paused=0
cache_promoted=0
rother CLIENT PAUSE $(( deadline - $(now_ms) )) WRITE >/dev/null 2>&1 || abort "Redis on ${f.from.host}: CLIENT PAUSE failed through the tunnel"
cache_paused=1
cache_want=$(rinfo rother master_repl_offset)
[ -n "$cache_want" ] || abort "Redis on ${f.from.host}: no replication offset through the tunnel"
# Its write counter and last save, for the fence: a replication PING moves the offset during a pause too.
cache_dirty=$(rinfo rother rdb_changes_since_last_save persistence)
cache_saved=$(rinfo rother rdb_last_save_time persistence)
[ -n "$cache_dirty" ] && [ -n "$cache_saved" ] || abort "Redis on ${f.from.host}: no write counter through the tunnel (INFO persistence)"
cache_until=$(( $(now_ms) + ${f.settings.catchupMs} ))
until [ "$(rinfo rlocal slave_repl_offset)" -ge "$cache_want" ] 2>/dev/null; do
    [ "$(now_ms)" -lt "$cache_until" ] || abort "Redis on ${f.to.host} processed only $(rinfo rlocal slave_repl_offset) of offset $cache_want after ${f.settings.catchupMs} ms (cutover:runbook.catchupMs)"
    sleep 0.01
done
cache_promoted=1
rlocal REPLICAOF NO ONE >/dev/null || abort "Redis on ${f.to.host}: REPLICAOF NO ONE failed"
[ "$(rinfo rlocal role)" = master ] || abort "Redis on ${f.to.host} is not a primary after REPLICAOF NO ONE"`;
}

/** In the switch's abort: the incoming Redis follows the outgoing one again, which takes writes again. */
export function cacheAbort(): string {
    return `if [ "\${cache_promoted:-0}" = 1 ]; then rlocal REPLICAOF 127.0.0.1 ${REDIS_TUNNEL_PORT} >/dev/null; fi
    if [ "\${cache_fenced:-0}" = 1 ]; then rother CONFIG SET min-replicas-to-write 0 >/dev/null 2>&1; fi
    if [ "\${cache_paused:-0}" = 1 ]; then rother CLIENT UNPAUSE >/dev/null 2>&1; fi`;
}

/**
 * Before the commit (may abort): the outgoing Redis fenced (it has no replica left, so with
 * min-replicas-to-write 1 it refuses writes), then its offset read again. Moved since the
 * pause means it took writes the incoming one never got (the pause ended at its deadline
 * first): committing would lose them, aborting keeps them (the incoming one follows it again).
 */
export function cacheFence(f: CacheFlip): string {
    return `cache_fenced=1
rother CONFIG SET min-replicas-to-write 1 >/dev/null 2>&1 || abort "Redis on ${f.from.host}: cannot fence it through the tunnel (CONFIG SET min-replicas-to-write 1)"
cache_now=$(rinfo rother master_repl_offset)
[ -n "$cache_now" ] || abort "Redis on ${f.from.host}: no replication offset through the tunnel after the fence"
if [ "$cache_now" != "$cache_want" ]; then
    # Redis sends its replicas a PING (14 bytes of the stream) every repl-ping-replica-period, paused or not: a
    # moved offset is writes only if the write counter moved too, or a save since reset it (then it cannot tell).
    [ "$(rinfo rother rdb_last_save_time persistence)" = "$cache_saved" ] && [ "$(rinfo rother rdb_changes_since_last_save persistence)" = "$cache_dirty" ] \\
        || abort "Redis on ${f.from.host} took writes after its pause ended (offset $cache_now, $cache_want at the pause): the switch ran past the freeze deadline"
fi`;
}

/** After the commit: the role a restart keeps. */
export function cacheCommit(): string {
    return `${PUT_FILE}
put ${REDIS_ROLE_CONF} 640 root:redis runtime <<'CUTOVER_ROLE'
${redisRoleConf("primary").trim()}
CUTOVER_ROLE
echo primary > ${CACHE_ROLE_MARKER}`;
}

/** resume, outgoing host: follow the incoming Redis through a tunnel to it (the stunnel config rendered as the cache step renders a replica's). */
export function cacheFollow(f: CacheFlip): string {
    return `# Redis: a replica of ${f.to.host}'s through stunnel; a partial resync (the incoming one kept this one's history).
${PUT_FILE}
put ${STUNNEL_CONF} 644 root:root tls <<'CUTOVER_STUNNEL'
${stunnelConf({ meshAddress: f.from.meshAddress }, { phase: "replica", source: { host: f.to.host, meshAddress: f.to.meshAddress } }).trim()}
CUTOVER_STUNNEL
${redisAuthLine(true, { own: "cache_password", peer: "cache_peer_password" })} | put ${REDIS_AUTH_CONF} 640 root:redis runtime
put ${REDIS_ROLE_CONF} 640 root:redis runtime <<'CUTOVER_ROLE'
${redisRoleConf("replica").trim()}
CUTOVER_ROLE
if [ "$reload_tls" = 1 ]; then kill -HUP "$(cat ${STUNNEL_PID})" || fail "stunnel is not running on ${f.from.host}"; sleep 0.5; fi
printf '%s' "$cache_peer_password" | rlocal -x CONFIG SET masterauth >/dev/null || fail "Redis on ${f.from.host}: CONFIG SET masterauth failed"
rlocal CONFIG SET replica-read-only yes >/dev/null
rlocal REPLICAOF 127.0.0.1 ${REDIS_TUNNEL_PORT} >/dev/null || fail "Redis on ${f.from.host}: REPLICAOF failed"
rlocal CONFIG SET min-replicas-to-write 0 >/dev/null
rlocal CLIENT UNPAUSE >/dev/null
echo replica > ${CACHE_ROLE_MARKER}
for _ in $(seq 1 120); do [ "$(rinfo rlocal master_link_status)" = up ] && break; sleep 0.25; done
[ "$(rinfo rlocal master_link_status)" = up ] || fail "Redis on ${f.from.host} does not replicate from ${f.to.host} (link: $(rinfo rlocal master_link_status)): $(tail -n 3 /var/log/stunnel4/cutover-redis.log 2>/dev/null)"`;
}
