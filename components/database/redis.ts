// Redis replication across sites. Redis speaks no TLS in the case study, so replication
// runs through stunnel on both ends: the source's stunnel accepts TLS on its mesh address
// and admits only clients with a certificate from the program's CAs; the replica's
// stunnel offers the source on loopback. Passwords and keys arrive on stdin.
import { CachePhase } from "../types";
import { PUT_FILE, installIfMissing, putTlsFiles, readSecrets, scriptHeader } from "../script";

export const REDIS_PORT = 6379;
/** stunnel's TLS port on the mesh address of a cache host. */
export const REDIS_TLS_PORT = 6380;
/** The replica's end of the tunnel, on loopback. */
export const REDIS_TUNNEL_PORT = 6390;
export const STUNNEL_DIR = "/etc/stunnel/cutover";
export const STUNNEL_CONF = "/etc/stunnel/cutover-redis.conf";
export const STUNNEL_PID = "/run/stunnel-cutover-redis.pid";
export const REDIS_AUTH_CONF = "/etc/redis/cutover-auth.conf";
/** Whether Redis follows the peer: written by the cache step per phase, and by the runbook when it switches Redis. */
export const REDIS_ROLE_CONF = "/etc/redis/cutover-role.conf";
/** The role the last cutover gave this Redis ("primary" | "replica"), written by the runbook. */
export const CACHE_ROLE_MARKER = "/var/lib/cutover/cache-role";

export interface RedisServer {
    host: string;
    meshAddress: string;
    /** Where the site's apps reach Redis (besides loopback). */
    privateAddress: string;
}

export interface RedisSource {
    host: string;
    meshAddress: string;
}

export interface RedisPlan {
    phase: CachePhase;
    caBundle: string;
    serverCert: string;
    clientCert: string;
    source?: RedisSource;
}

/** Appended to Debian's redis.conf by an include; the passwords and the role live in files of their own. */
export function redisConf(s: RedisServer): string {
    return `# Rendered by cutover: loopback and the site network only; the mesh reaches Redis through stunnel.
bind 127.0.0.1 ${s.privateAddress}
port ${REDIS_PORT}
protected-mode yes
include ${REDIS_AUTH_CONF}
include ${REDIS_ROLE_CONF}
`;
}

/** The role a restarted Redis comes back in: a replica follows the peer through the tunnel. */
export function redisRoleConf(role: "primary" | "replica"): string {
    return role === "replica"
        ? `# Rendered by cutover: a replica of the peer site's Redis, through stunnel.
replicaof 127.0.0.1 ${REDIS_TUNNEL_PORT}
replica-read-only yes
`
        : `# Rendered by cutover: takes writes (not a replica).
`;
}

/** requirepass, and the peer's password when this Redis follows (or may follow) the peer; the shell variables that hold them. */
export function redisAuthLine(withPeer: boolean, vars = { own: "password", peer: "peer_password" }): string {
    return withPeer ? `printf 'requirepass "%s"\\nmasterauth "%s"\\n' "$${vars.own}" "$${vars.peer}"` : `printf 'requirepass "%s"\\n' "$${vars.own}"`;
}

/**
 * After a cutover the runbook's role (CACHE_ROLE_MARKER) wins over cache.phase primary /
 * replica: the cache step keeps Redis as the runbook left it. Detached clears the marker.
 */
function cacheRoleGuard(phase: CachePhase): string {
    if (phase === "detached") return `rm -f ${CACHE_ROLE_MARKER}`;
    return `runbook_role=$(cat ${CACHE_ROLE_MARKER} 2>/dev/null || true)
if [ -n "$runbook_role" ] && [ "$runbook_role" != ${phase} ]; then
    echo "cache: kept as the cutover runbook left it ($runbook_role); cutover:cache.phase says ${phase}"
    echo "cache: role=$runbook_role position= lag="
    echo "cache: unchanged"
    exit 0
fi`;
}

/** stunnel: the TLS server (unless detached) and, on a replica, the client to the source. */
export function stunnelConf(s: Pick<RedisServer, "meshAddress">, plan: Pick<RedisPlan, "phase" | "source">): string {
    const common = `CAfile = ${STUNNEL_DIR}/ca.pem
verifyChain = yes
sslVersionMin = TLSv1.2`;
    const sections: string[] = [];
    if (plan.phase !== "detached") {
        sections.push(`[redis-tls]
accept = ${s.meshAddress}:${REDIS_TLS_PORT}
connect = 127.0.0.1:${REDIS_PORT}
cert = ${STUNNEL_DIR}/server.pem
key = ${STUNNEL_DIR}/server.key
requireCert = yes
${common}`);
    }
    if (plan.source) {
        sections.push(`[redis-replication]
client = yes
accept = 127.0.0.1:${REDIS_TUNNEL_PORT}
connect = ${plan.source.meshAddress}:${REDIS_TLS_PORT}
cert = ${STUNNEL_DIR}/client.pem
key = ${STUNNEL_DIR}/client.key
checkIP = ${plan.source.meshAddress}
${common}`);
    }
    return `; Rendered by cutover: Redis replication over TLS with client certificates.
foreground = yes
pid = ${STUNNEL_PID}
output = /var/log/stunnel4/cutover-redis.log

${sections.join("\n\n")}
`;
}

export function redisScript(s: RedisServer, plan: RedisPlan): string {
    const about = plan.source ? `Redis ${plan.phase} on ${s.host}, replicating from ${plan.source.host}` : `Redis ${plan.phase} on ${s.host}`;
    return `${scriptHeader("cache", s.host, about)}
${installIfMissing("redis-server", "redis-server")}
${installIfMissing("stunnel4", "stunnel4")}
${readSecrets(plan.source ? { "server-key": "server_key", "client-key": "client_key", password: "password", "peer-password": "peer_password" } : { "server-key": "server_key", "client-key": "client_key", password: "password" })}
${cacheRoleGuard(plan.phase)}

${PUT_FILE}
install -d -m 755 /var/log/stunnel4
${putTlsFiles(STUNNEL_DIR, "root:root", { "ca.pem": plan.caBundle, "server.pem": plan.serverCert, "client.pem": plan.clientCert }, { "server.key": "server_key", "client.key": "client_key" })}
put ${STUNNEL_CONF} 644 root:root tls <<'CUTOVER_STUNNEL'
${stunnelConf(s, plan).trim()}
CUTOVER_STUNNEL
put /etc/redis/cutover.conf 640 root:redis config <<'CUTOVER_REDIS'
${redisConf(s).trim()}
CUTOVER_REDIS
put ${REDIS_ROLE_CONF} 640 root:redis runtime <<'CUTOVER_ROLE'
${redisRoleConf(plan.phase === "replica" ? "replica" : "primary").trim()}
CUTOVER_ROLE
${redisAuthLine(plan.source !== undefined)} | put ${REDIS_AUTH_CONF} 640 root:redis config
if ! grep -qx 'include /etc/redis/cutover.conf' /etc/redis/redis.conf; then
    echo 'include /etc/redis/cutover.conf' >> /etc/redis/redis.conf
    restart=1
    changed=1
fi

systemd() { [ -d /run/systemd/system ]; }
# cli: authenticated once Redis has our password; a Redis found without one is asked plainly.
cli() { REDISCLI_AUTH="$auth" redis-cli --no-auth-warning -h 127.0.0.1 -p ${REDIS_PORT} "$@"; }
auth=$password
if ! cli ping 2>/dev/null | grep -qx PONG; then
    auth=""
    if ! cli ping 2>/dev/null | grep -qx PONG; then
        redis_started=$(date +%s%N)
        if systemd; then systemctl start redis-server; else install -d -o redis -g redis /run/redis; runuser -u redis -- redis-server /etc/redis/redis.conf; fi \\
            || fail "redis-server did not start: $(tail -n 5 /var/log/redis/redis-server.log 2>/dev/null)"
        changed=1
        restart=0
        auth=$password
    fi
fi
for _ in $(seq 1 60); do cli ping 2>/dev/null | grep -qx PONG && break; sleep 0.5; done
cli ping 2>/dev/null | grep -qx PONG || fail "Redis does not answer after 30 s: $(tail -n 5 /var/log/redis/redis-server.log 2>/dev/null)"
if [ "$restart" = 1 ]; then
    # Applied online: Redis keeps serving (and a replica keeps its data) while settings change.
    cli CONFIG SET bind "127.0.0.1 ${s.privateAddress}" >/dev/null || fail "CONFIG SET bind failed"
    # Passwords on stdin (-x: the last argument), never on redis-cli's command line.
    printf '%s' "\${peer_password:-}" | cli -x CONFIG SET masterauth >/dev/null || fail "CONFIG SET masterauth failed"
    printf '%s' "$password" | cli -x CONFIG SET requirepass >/dev/null || fail "CONFIG SET requirepass failed"
    auth=$password
fi
info() { cli INFO replication | tr -d '\\r' | awk -F: -v k="$1" '$1 == k { print $2 }'; }

# stunnel: started once, told to re-read its config (SIGHUP) when a file changed.
stunnel_pid=$(cat ${STUNNEL_PID} 2>/dev/null || true)
if [ -z "$stunnel_pid" ] || ! kill -0 "$stunnel_pid" 2>/dev/null; then
    if systemd; then systemctl enable --now stunnel@cutover-redis >/dev/null 2>&1; else setsid stunnel4 ${STUNNEL_CONF} </dev/null >/dev/null 2>&1 & fi
    for _ in $(seq 1 20); do [ -s ${STUNNEL_PID} ] && break; sleep 0.25; done
    [ -s ${STUNNEL_PID} ] || fail "stunnel did not start: $(tail -n 5 /var/log/stunnel4/cutover-redis.log 2>/dev/null)"
    changed=1
elif [ "$reload_tls" = 1 ]; then
    kill -HUP "$stunnel_pid"
fi

${plan.phase === "replica" ? `# Time the full sync when one is due (Redis started as a replica, or becomes one now).
[ "$(info master_link_status)" = up ] || started=\${redis_started:-$(date +%s%N)}
if [ "$(info role)" != slave ] || [ "$(info master_port)" != ${REDIS_TUNNEL_PORT} ]; then
    cli CONFIG SET replica-read-only yes >/dev/null
    cli REPLICAOF 127.0.0.1 ${REDIS_TUNNEL_PORT} >/dev/null || fail "REPLICAOF failed"
    changed=1
fi
# The first sync copies the whole data set through the tunnel; wait for the link.
for _ in $(seq 1 240); do [ "$(info master_link_status)" = up ] && break; sleep 0.5; done
[ "$(info master_link_status)" = up ] || fail "replication from ${plan.source!.host} is not up (link: $(info master_link_status)): $(tail -n 3 /var/log/stunnel4/cutover-redis.log 2>/dev/null)"
[ -z "\${started:-}" ] || echo "cache: synced from ${plan.source!.host} in $(( ($(date +%s%N) - started) / 1000000 )) ms"
echo "cache: role=replica position=$(info slave_repl_offset) lag=$(info master_last_io_seconds_ago)"` : `if [ "$(info role)" = slave ]; then
    # Promotion: stop copying the peer, take writes.
    cli REPLICAOF NO ONE >/dev/null || fail "REPLICAOF NO ONE failed"
    echo "cache: promoted"
    changed=1
fi
echo "cache: role=${plan.phase} position=$(info master_repl_offset)"`}
if [ "$changed" = 1 ]; then echo "cache: changed"; else echo "cache: unchanged"; fi
`;
}
