// The probe app: a tiny HTTP service on app hosts for rehearsals. Each acknowledged write
// is recorded with the client's sequence number, so a load generator can later check that
// every acknowledged write exists exactly once. While the site is frozen (the runbook's
// freeze step) it answers writes with 503.
import { APP_PORT } from "../firewall/render";
import { PUT_FILE, scriptHeader } from "../script";

export const PROBE_DIR = "/var/lib/cutover-probe";
export const PROBE_FROZEN = "/run/cutover-probe/frozen";
const PROBE_PY = "/usr/local/lib/cutover/probe.py";
const PROBE_PID = "/run/cutover-probe/probe.pid";

export function probePy(site: string, host: string): string {
    return `# Rendered by cutover: the rehearsal probe app of ${host}.
import http.server, os, threading, urllib.parse

SITE, HOST, PORT = ${JSON.stringify(site)}, ${JSON.stringify(host)}, ${APP_PORT}
LOG, FROZEN = ${JSON.stringify(`${PROBE_DIR}/writes`)}, ${JSON.stringify(PROBE_FROZEN)}
lock = threading.Lock()


class Probe(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body):
        data = (body + "\\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, "ok %s %s" % (SITE, HOST))
        else:
            self.reply(404, "not found")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        client, seq = query.get("client", [""])[0], query.get("seq", [""])[0]
        if url.path != "/write" or not client.isalnum() or not seq.isdigit():
            return self.reply(400, "POST /write?client=<name>&seq=<n>")
        if os.path.exists(FROZEN):
            return self.reply(503, "frozen")
        with lock:
            with open(LOG, "a") as f:
                f.write("%s %s %s %s\\n" % (client, seq, SITE, HOST))
                f.flush()
                os.fsync(f.fileno())
        self.reply(200, "%s %s" % (SITE, HOST))

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # Released held writes arrive as a burst: the default backlog of 5 would drop SYNs.
    request_queue_size = 1024


Server(("0.0.0.0", PORT), Probe).serve_forever()
`;
}

export function probeScript(site: string, host: string): string {
    return `${scriptHeader("probe", host, `probe app on ${host}`)}
command -v python3 >/dev/null || fail "python3 is missing (apt-get install python3-minimal)"
install -d -m 755 ${PROBE_DIR} /run/cutover-probe
${PUT_FILE}
put ${PROBE_PY} 644 root:root config <<'CUTOVER_PROBE'
${probePy(site, host).trim()}
CUTOVER_PROBE
pid=$(cat ${PROBE_PID} 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    [ "$restart" = 0 ] || kill "$pid"
else
    restart=1
fi
if [ "$restart" = 1 ]; then
    setsid python3 ${PROBE_PY} </dev/null >/dev/null 2>&1 &
    echo $! > ${PROBE_PID}
    changed=1
fi
for _ in $(seq 1 40); do python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${APP_PORT}/health', timeout=1)" 2>/dev/null && break; sleep 0.25; done
python3 -c "import urllib.request; print('probe:', urllib.request.urlopen('http://127.0.0.1:${APP_PORT}/health', timeout=1).read().decode().strip())" || fail "the probe app does not answer on port ${APP_PORT}"
if [ "$changed" = 1 ]; then echo "probe: changed"; else echo "probe: unchanged"; fi
`;
}
