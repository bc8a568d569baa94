// The edge: HAProxy on a site's edge hosts, in front of the app hosts of BOTH sites (the
// peer's over the mesh). It routes to the live site and, during a cutover, holds incoming
// writes (a queue with a deadline, as ProxySQL holds queries while no writer is online)
// and releases them to whichever site is live then: users see a latency blip, not errors.
import { PUT_FILE, installIfMissing, scriptHeader } from "../script";
import { EDGE_ADMIN_PORT } from "../firewall/render";
import { EDGE_LIVE_FILE } from "../runbook/render";

export const EDGE_LUA = "/etc/haproxy/cutover-edge.lua";
export const EDGE_SOCKET = "/run/haproxy/admin.sock";
export const EDGE_CONF = "/etc/haproxy/haproxy.cfg";

export interface Backend {
    name: string;
    address: string;
    port: number;
}

export interface EdgePlan {
    host: string;
    /** Where clients connect. */
    bind: string;
    /** App hosts per site name. */
    sites: Record<string, Backend[]>;
    /** The site served until the runbook routes elsewhere (written once to the live file). */
    live: string;
    /** The host's mesh address: the admin socket listens there too, for the runbook's switch step. */
    adminAddress?: string;
}

/** A site's backend (site names are lower-case letters, digits and '-', which HAProxy accepts). */
export function siteBackend(site: string): string {
    return `site_${site}`;
}

/**
 * The Lua side: `cutover hold <ms>` holds writes (methods other than GET/HEAD/OPTIONS)
 * until `cutover hold off` or the deadline, whichever is first; `cutover live <site>`
 * routes every request that is released or arrives later. Both are commands of the
 * admin socket (also on the mesh address), so the runbook drives them without a reload.
 */
export function edgeLua(sites: string[]): string {
    return `-- Rendered by cutover.
local known = { ${sites.map((s) => `[${JSON.stringify(s)}] = true`).join(", ")} }
-- The live site survives reloads: "cutover live <site>" writes it to a file, read here.
-- (the ensure-step writes the file before HAProxy starts; the first site is only a fallback)
local live = ${JSON.stringify(sites[0] ?? "")}
local f = io.open(${JSON.stringify(EDGE_LIVE_FILE)}, "r")
if f then
    local saved = f:read("*l")
    f:close()
    if saved and known[saved] then live = saved end
end
local hold_until = 0 -- ms since the epoch; 0: not holding

local function now_ms()
    local t = core.now()
    return t.sec * 1000 + math.floor(t.usec / 1000)
end

core.register_action("cutover_hold", { "http-req" }, function(txn)
    while hold_until > 0 and now_ms() < hold_until do
        core.msleep(5)
    end
end)

core.register_fetches("cutover_live", function(txn)
    return live
end)

core.register_cli({ "cutover", "hold" }, "cutover hold <ms>|off : hold writes for at most <ms>, or release them", function(applet, _, _, arg)
    if arg == "off" then
        hold_until = 0
    elseif tonumber(arg) and tonumber(arg) > 0 and tonumber(arg) <= 60000 then
        hold_until = now_ms() + tonumber(arg)
    else
        applet:send("error: cutover hold <1..60000 ms>|off\\n")
        return
    end
    applet:send("hold " .. (hold_until > 0 and "on" or "off") .. "\\n")
end)

core.register_cli({ "cutover", "live" }, "cutover live [<site>] : show or set the site requests go to", function(applet, _, _, site)
    if site and site ~= "" then
        if not known[site] then
            applet:send("error: unknown site " .. site .. "\\n")
            return
        end
        live = site
        -- Kept for reloads and restarts: a reloaded edge must not route back.
        local out = io.open(${JSON.stringify(EDGE_LIVE_FILE)} .. ".tmp", "w")
        if out then
            out:write(site .. "\\n")
            out:close()
            os.rename(${JSON.stringify(EDGE_LIVE_FILE)} .. ".tmp", ${JSON.stringify(EDGE_LIVE_FILE)})
        end
    end
    applet:send("live " .. live .. " hold " .. (hold_until > now_ms() and "on" or "off") .. "\\n")
end)
`;
}

export function haproxyConf(p: EdgePlan): string {
    const backends = Object.entries(p.sites)
        .map(([site, servers]) => `backend ${siteBackend(site)}
    option httpchk GET /health
    retry-on conn-failure empty-response
    retries 3
    option redispatch
${servers.length > 0 ? servers.map((s) => `    server ${s.name} ${s.address}:${s.port} check inter 1s fall 2 rise 1 maxconn 64`).join("\n") : "    # no app hosts known for this site yet"}`)
        .join("\n\n");
    return `# Rendered by cutover: the edge of ${p.host}.
global
    log /dev/log local0
    lua-load ${EDGE_LUA}
    stats socket ${EDGE_SOCKET} mode 600 level admin${p.adminAddress ? `
    # The runbook's switch step holds and routes from the incoming database host, over the mesh.
    stats socket ipv4@${p.adminAddress}:${EDGE_ADMIN_PORT} level admin` : ""}
    daemon

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # Held writes are buffered here until released; past a server's maxconn they queue
    # in HAProxy (up to timeout queue) rather than flood the app.
    option http-buffer-request
    timeout queue 30s

frontend web
    bind ${p.bind}
    http-request lua.cutover_hold unless METH_GET or METH_HEAD or METH_OPTIONS
    use_backend ${siteBackend("%[lua.cutover_live]")}

${backends}
`;
}

/** The ensure-step: files in place, HAProxy started or reloaded seamlessly when they changed. */
export function edgeScript(p: EdgePlan): string {
    return `${scriptHeader("edge", p.host, `HAProxy edge on ${p.host}`)}
${installIfMissing("haproxy", "haproxy")}
# A config cutover did not render is kept once, next to ours.
if [ -f ${EDGE_CONF} ] && ! grep -q "^# Rendered by cutover" ${EDGE_CONF} && [ ! -e ${EDGE_CONF}.before-cutover ]; then
    cp -p ${EDGE_CONF} ${EDGE_CONF}.before-cutover
fi
${PUT_FILE}
put ${EDGE_LUA} 644 root:root config <<'CUTOVER_LUA'
${edgeLua(Object.keys(p.sites)).trim()}
CUTOVER_LUA
# The live site: set here once; from then on only the runbook's switch (cutover live) changes it.
[ -s ${EDGE_LIVE_FILE} ] || { echo ${p.live} > ${EDGE_LIVE_FILE}; changed=1; }
put ${EDGE_CONF} 644 root:root config <<'CUTOVER_CFG'
${haproxyConf(p).trim()}
CUTOVER_CFG
haproxy -c -q -f ${EDGE_CONF} 2>/tmp/haproxy-check || fail "the rendered config is invalid: $(cat /tmp/haproxy-check)"
install -d -m 755 /run/haproxy
pid=$(cat /run/haproxy.pid 2>/dev/null || true)
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    if [ -d /run/systemd/system ]; then systemctl restart haproxy; else haproxy -f ${EDGE_CONF} -p /run/haproxy.pid; fi || fail "haproxy did not start"
    changed=1
elif [ "$restart" = 1 ]; then
    # Seamless reload: the old process finishes its connections, the new one takes new ones.
    if [ -d /run/systemd/system ]; then systemctl reload haproxy; else haproxy -f ${EDGE_CONF} -p /run/haproxy.pid -sf "$pid"; fi || fail "haproxy did not reload"
fi
for _ in $(seq 1 20); do [ -S ${EDGE_SOCKET} ] && break; sleep 0.25; done
echo "edge: $(echo "cutover live" | socat -t 2 - UNIX-CONNECT:${EDGE_SOCKET} 2>/dev/null || echo "no admin socket")"
if [ "$changed" = 1 ]; then echo "edge: changed"; else echo "edge: unchanged"; fi
`;
}
