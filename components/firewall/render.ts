// Inbound policy per role, and the UFW script that enforces it on a host.
// The cloud layer (DigitalOcean firewall, AWS security group) is built from the same rules.
import { exactCover, isWholeInternet } from "../cidr";
import { installIfMissing, scriptHeader } from "../script";
import { REDIS_PORT, REDIS_TLS_PORT } from "../database/redis";
import { DbEngine, Role } from "../types";

export interface InboundRule {
    protocol: "tcp" | "udp";
    port: number;
    /** CIDRs allowed in; never empty. */
    sources: string[];
    /** Why the port is open; becomes the UFW comment and the cloud rule description. */
    purpose: string;
}

export interface Service {
    name: string;
    protocol: "tcp" | "udp";
    port: number;
    /**
     * Who may connect: the world (or Cloudflare), the site's private network, the site
     * network and the mesh (replication across sites), admins only, or the database hosts
     * whose runbook drives it (by mesh address, see edgeAdminRules).
     */
    exposure: "public" | "site" | "mesh" | "admin" | "runbook";
}

export const DB_PORTS: Record<DbEngine, number> = { mysql: 3306, mariadb: 3306, postgres: 5432 };
export const APP_PORT = 8080;
/** The edge's admin socket on its mesh address: the runbook's switch step holds and routes through it. */
export const EDGE_ADMIN_PORT = 9901;

const REDIS_SERVICES: Service[] = [
    { name: "redis", protocol: "tcp", port: REDIS_PORT, exposure: "site" },
    { name: "redis-tls", protocol: "tcp", port: REDIS_TLS_PORT, exposure: "mesh" },
];

/**
 * What a host of a role listens on. The inventory output and the firewall both come from
 * here. `cacheOnDb`: the site has Redis but no cache host, so its db host runs it.
 */
export function roleServices(role: Role, dbEngine: DbEngine, cacheOnDb = false, rdsRelay = false): Service[] {
    const ssh: Service = { name: "ssh", protocol: "tcp", port: 22, exposure: "admin" };
    switch (role) {
        case "edge":
            return [ssh, { name: "http", protocol: "tcp", port: 80, exposure: "public" }, { name: "https", protocol: "tcp", port: 443, exposure: "public" }, { name: "edge-admin", protocol: "tcp", port: EDGE_ADMIN_PORT, exposure: "runbook" }];
        case "app":
            // The mesh too: the other site's edge forwards to these apps after a flip.
            return [ssh, { name: "app-http", protocol: "tcp", port: APP_PORT, exposure: "mesh" }];
        case "db":
            return [ssh, { name: dbEngine, protocol: "tcp", port: DB_PORTS[dbEngine], exposure: "mesh" }, ...(cacheOnDb ? REDIS_SERVICES : [])];
        case "cache":
            return [ssh, ...REDIS_SERVICES];
        case "worker":
            // With an RDS database, workers relay its replication to the old site (components/database/rds.ts).
            return [ssh, ...(rdsRelay ? [{ name: "rds-relay", protocol: "tcp", port: 3306, exposure: "site" } as Service] : [])];
    }
}

export interface PolicyInput {
    role: Role;
    dbEngine: DbEngine;
    adminCidrs: string[];
    /** The site's private network. */
    siteCidr: string;
    /** Who may reach HTTP/HTTPS on the edge: Cloudflare's ranges when proxied, else the internet. */
    publicSources: string[];
    /** The mesh range: replication ports also admit it. */
    meshCidr?: string;
    /** Redis runs on the db host (the site has no cache host). */
    cacheOnDb?: boolean;
    /** The database is RDS, reached through a relay on the workers. */
    rdsRelay?: boolean;
}

/** Default deny, then exactly these. Database and cache ports only ever admit private sources. */
export function inboundRules(p: PolicyInput): InboundRule[] {
    // The runbook's port depends on the database hosts of both sites: edgeAdminRules.
    return roleServices(p.role, p.dbEngine, p.cacheOnDb, p.rdsRelay).filter((s) => s.exposure !== "runbook").map((s) => ({
        protocol: s.protocol,
        port: s.port,
        sources:
            s.exposure === "admin"
                ? p.adminCidrs
                : s.exposure === "public"
                  ? p.publicSources
                  : // Only authenticated tinc members hold mesh addresses.
                    [p.siteCidr, ...(s.exposure === "mesh" && p.meshCidr ? [p.meshCidr] : [])],
        purpose: `${s.name} from ${s.exposure === "admin" ? "admins" : s.exposure === "public" ? "clients" : s.exposure === "site" ? "the site network" : "the site network and mesh"}`,
    }));
}

/**
 * The edges' admin socket holds and routes every write at level admin, unauthenticated: it
 * admits only the database hosts that run the runbook's switch, at their mesh addresses.
 */
export function edgeAdminRules(dbMeshAddresses: string[]): InboundRule[] {
    const sources = [...new Set(dbMeshAddresses.filter(Boolean))].sort().map((a) => `${a}/32`);
    return sources.length === 0 ? [] : [{ protocol: "tcp", port: EDGE_ADMIN_PORT, sources, purpose: "edge-admin from the database hosts" }];
}

/** The tinc port, TCP and UDP, from every member, as the fewest exact CIDRs: a site's hosts in a range are a few rules, not one each. */
export function meshRules(port: number, sources: string[]): InboundRule[] {
    if (sources.length === 0) return [];
    const covered = exactCover(sources);
    return (["tcp", "udp"] as const).map((protocol) => ({ protocol, port, sources: covered, purpose: "tinc from mesh members" }));
}

/**
 * UFW's own spelling of a rule, exactly as `ufw show added` prints it, so the script
 * can diff. UFW folds "from 0.0.0.0/0" and "from ::/0" into one rule without a source.
 */
export function ufwRules(r: InboundRule): string[] {
    if (!/^[\w .:/-]+$/.test(r.purpose)) throw new Error(`firewall rule purpose ${JSON.stringify(r.purpose)} must be plain words (it is a UFW comment)`);
    const comment = `comment '${r.purpose}'`;
    const anywhere = r.sources.some(isWholeInternet);
    if (anywhere) return [`allow ${r.port}/${r.protocol} ${comment}`];
    // UFW prints a single address without its /32 (/128): spell it that way too.
    return r.sources.map((s) => `allow from ${s.replace(/\/(32|128)$/, "")} to any port ${r.port} proto ${r.protocol} ${comment}`);
}

/**
 * An idempotent "ensure" script for a host's own firewall: key-only sshd, UFW with
 * default deny inbound and exactly the given rules. Adds missing rules before it
 * deletes unwanted ones, so an admin's SSH session is never cut. Prints
 * "firewall: unchanged" when nothing had to change.
 */
export function hostFirewallScript(host: string, rules: InboundRule[]): string {
    const wanted = rules.flatMap(ufwRules);
    return `${scriptHeader("firewall", host, `Host firewall for ${host}. Changes made by hand are removed on the next run`)}
${installIfMissing("ufw", "ufw")}
# sshd keeps the first value it reads and includes sshd_config.d/*.conf in name order at the top
# of sshd_config: 00- comes before cloud-init's 50-cloud-init.conf (PasswordAuthentication yes).
sshd_conf=/etc/ssh/sshd_config.d/00-cutover.conf
sshd_wanted=$(cat <<'SSHD'
${sshdKeyOnlyConf().trimEnd()}
SSHD
)
${RELOAD_SSHD_HELD}
reload_sshd=0
if [ -e /etc/ssh/sshd_config.d/50-cutover.conf ]; then rm -f /etc/ssh/sshd_config.d/50-cutover.conf; reload_sshd=1; fi
if [ "$(cat "$sshd_conf" 2>/dev/null || true)" != "$sshd_wanted" ]; then
    mkdir -p "$(dirname "$sshd_conf")"
    printf '%s\n' "$sshd_wanted" > "$sshd_conf"
    reload_sshd=1
fi
sshd -t || fail "sshd rejects $sshd_conf"
# The effective values, not the file: anything read before it (sshd_config above its Include) wins.
tested=$(sshd -T 2>&1) || fail "sshd -T failed: $(tail -n 3 <<< "$tested")"
effective=$(awk '$1 == "passwordauthentication" || $1 == "kbdinteractiveauthentication" || $1 == "permitrootlogin" { print $1 "=" $2 }' <<< "$tested" | sort | paste -sd ' ' -)
[ "$effective" = "${SSHD_EFFECTIVE}" ] || fail "sshd still allows more than keys after $sshd_conf: sshd -T says $effective; an earlier setting wins (sshd_config before its Include line?)"
if [ "$reload_sshd" = 1 ]; then
    reload_sshd_held
    changed=1
fi

wanted=$(cat <<'RULES'
${wanted.join("\n")}
RULES
)
ufw_words() { xargs ufw "$@"; } # xargs splits like the shell, honouring the comment's quotes, expanding nothing

case "$(ufw status verbose | sed -n 's/^Default: //p')" in
    "deny (incoming), allow (outgoing)"*) ;;
    *) ufw default deny incoming >/dev/null; ufw default allow outgoing >/dev/null; changed=1 ;;
esac

# Each ufw call is a Python start: only the rules missing are added.
added=$(ufw show added | sed -n 's/^ufw //p')
while IFS= read -r rule; do
    [ -n "$rule" ] || continue
    grep -qxF -- "$rule" <<< "$added" && continue
    out=$(ufw_words <<< "$rule" 2>&1) || fail "ufw $rule: $out"
    case "$out" in *Skipping*) ;; *) changed=1 ;; esac
done <<< "$wanted"

# Rules present but no longer wanted (earlier runs, or added by hand).
while IFS= read -r rule; do
    [ -n "$rule" ] || continue
    if ! grep -qxF -- "$rule" <<< "$wanted"; then
        out=$(ufw_words delete <<< "$rule" 2>&1) || fail "ufw delete $rule: $out"
        changed=1
    fi
done <<< "$added"

if ! ufw status | grep -qx "Status: active"; then
    ufw --force enable >/dev/null || fail "ufw enable failed"
    changed=1
fi
if [ "$changed" = 1 ]; then echo "firewall: changed"; else echo "firewall: unchanged"; fi
`;
}

/**
 * sshd re-executes itself on SIGHUP and listens nowhere until the new process has bound its
 * ports again (about 80 ms on a busy 2-core host): an admin connecting then is refused. Its
 * ports drop new connections' SYNs until it listens again, so a client resends a second later
 * instead of failing. The rule stops matching by itself after 30 s (iptables' time match),
 * so a killed script cannot lock anyone out. Without an sshd of its own to watch (socket
 * activation), the reload is plain.
 */
const RELOAD_SSHD_HELD = `# Listening sockets of process $1 as "address inode" lines.
sshd_listeners() { { ss -Hltnpe 2>/dev/null || true; } | awk -v p="pid=$1," 'index($0, p) { for (i = 1; i <= NF; i++) if ($i ~ /^ino:/) print $4, $i }' | sort -u; }
reload_sshd_held() {
    local pid before after port tables hold held=() i
    pid=$(cat /run/sshd.pid 2>/dev/null || true)
    before=$(if [ -n "$pid" ]; then sshd_listeners "$pid"; fi)
    if [ -n "$before" ]; then
        hold=(--syn -m time --datestop "$(date -u -d '+30 sec' +%Y-%m-%dT%H:%M:%S)" -m comment --comment "cutover: sshd reloading" -j DROP)
        for port in $(awk '{ sub(/.*:/, "", $1); print $1 }' <<< "$before" | sort -u); do
            for tables in iptables ip6tables; do
                if "$tables" -w 5 -I INPUT 1 -p tcp --dport "$port" "\${hold[@]}" 2>/dev/null; then held+=("$tables $port"); fi
            done
        done
    fi
    systemctl reload ssh 2>/dev/null || kill -HUP "$pid" 2>/dev/null || fail "could not reload sshd"
    if [ -n "$before" ]; then
        # The same process (exec keeps the pid) listening on sockets it did not have before.
        for i in $(seq 100); do
            after=$(sshd_listeners "$pid")
            if [ -n "$after" ] && [ -z "$(comm -12 <(awk '{ print $2 }' <<< "$before" | sort) <(awk '{ print $2 }' <<< "$after" | sort))" ]; then break; fi
            after=
            sleep 0.1
        done
        for i in "\${held[@]}"; do
            set -- $i
            "$1" -w 5 -D INPUT -p tcp --dport "$2" "\${hold[@]}" 2>/dev/null || true
        done
        [ -n "$after" ] || fail "sshd does not listen again within 10 s of its reload (pid $pid)"
    fi
}`;

/** What \`sshd -T\` prints for sshdKeyOnlyConf, sorted (it spells prohibit-password without-password). */
const SSHD_EFFECTIVE = "kbdinteractiveauthentication=no passwordauthentication=no permitrootlogin=without-password";

/** Key-only SSH: no passwords, no keyboard-interactive, root only with a key. */
export function sshdKeyOnlyConf(): string {
    return `# Rendered by cutover: key-only SSH.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
`;
}
