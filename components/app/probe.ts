// The probe app: a tiny HTTP service on app hosts for rehearsals. Each write becomes a row
// (client, sequence number, site, host) in the site's MySQL/MariaDB database over the mesh,
// acknowledged only after the INSERT committed; so a load generator can later check that
// every acknowledged write exists exactly once in the database that is live at the end.
// While the site's database is read-only (the runbook's freeze) writes get 503.
import { APP_PORT } from "../firewall/render";
import { PROBE_TABLE, PROBE_USER } from "../database/mysql";
import { PG_PROBE_DB, PG_PROBE_ROLE } from "../database/postgres";
import { DbEngine } from "../types";
import { PUT_FILE, installUnless, putTlsFiles, readSecrets, scriptHeader } from "../script";

const PROBE_PY = "/usr/local/lib/cutover/probe.py";
const PROBE_CNF = "/etc/cutover-probe/db.cnf";
const PROBE_PID = "/run/cutover-probe/probe.pid";

export interface ProbePlan {
    site: string;
    host: string;
    /** The site's database server (mesh address and port) and its engine. */
    db: { address: string; port: number; engine: DbEngine };
}

const PROBE_TLS = "/etc/cutover-probe";

export function probePy(p: ProbePlan): string {
    return `# Rendered by cutover: the rehearsal probe app of ${p.host}.
import http.server, queue, threading, urllib.parse
${p.db.engine === "postgres" ? `import psycopg2

SITE, HOST, PORT = ${JSON.stringify(p.site)}, ${JSON.stringify(p.host)}, ${APP_PORT}
# Certificate login (CN ${PG_PROBE_ROLE}), the server verified against the site's CA.
DB = dict(host=${JSON.stringify(p.db.address)}, port=${p.db.port}, dbname="${PG_PROBE_DB}", user="${PG_PROBE_ROLE}", sslmode="verify-full", sslrootcert="${PROBE_TLS}/ca.pem", sslcert="${PROBE_TLS}/client.pem", sslkey="${PROBE_TLS}/client.key", connect_timeout=2)
TABLE = "writes"


def connect():
    conn = psycopg2.connect(**DB)
    conn.autocommit = True
    return conn


def usable(conn):
    # A cutover stops and restarts servers: a pooled connection may be dead (pre-ping).
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        return True
    except Exception:
        conn.close()
        return False` : `import pymysql

SITE, HOST, PORT = ${JSON.stringify(p.site)}, ${JSON.stringify(p.host)}, ${APP_PORT}
DB = dict(read_default_file="${PROBE_CNF}", host=${JSON.stringify(p.db.address)}, port=${p.db.port}, connect_timeout=2, read_timeout=10, write_timeout=10, autocommit=True)
TABLE = "${PROBE_TABLE}"


def connect():
    return pymysql.connect(**DB)


def usable(conn):
    return True`}


pool = queue.LifoQueue()  # idle connections: a write borrows one, a failed one is dropped
# At most this many connections at once, as an app's pool would: held writes released
# together after a cutover must not exceed the database's max_connections (100 by default).
slots = threading.BoundedSemaphore(20)


def insert(client, seq):
    with slots:
        insert_now(client, seq)


def insert_now(client, seq):
    conn = None
    while conn is None:
        try:
            conn = pool.get_nowait()
        except queue.Empty:
            conn = connect()
            break
        if not usable(conn):
            conn = None
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO " + TABLE + " (client, seq, site, host) VALUES (%s, %s, %s, %s)", (client, int(seq), SITE, HOST))
    except Exception:
        conn.close()
        raise
    pool.put(conn)


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
        if url.path != "/write" or not client.isalnum() or len(client) > 32 or not seq.isdigit():
            return self.reply(400, "POST /write?client=<name>&seq=<n>")
        try:
            insert(client, seq)
        except Exception as e:
            # Read-only (frozen) or unreachable: not acknowledged.
            return self.reply(503, str(e)[:200])
        self.reply(200, "%s %s" % (SITE, HOST))

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # Released held writes arrive as a burst: the default backlog of 5 would drop SYNs.
    request_queue_size = 1024


Server(("0.0.0.0", PORT), Probe).serve_forever()
`;
}

/** `tls`: PostgreSQL's certificates (CA and client certificate; the key arrives on stdin as probe-key). */
export function probeScript(p: ProbePlan, tls?: { caCert: string; clientCert: string }): string {
    return `${scriptHeader("probe", p.host, `probe app on ${p.host}`)}
# Debian's interpreter, where Debian's python3-pymysql lives (whatever else is first on PATH).
py=/usr/bin/python3
${installUnless("[ -x $py ]", "python3-minimal", "$py")}${p.db.engine === "postgres"
        ? `${installUnless('$py -c "import psycopg2" 2>/dev/null', "python3-psycopg2", "python3-psycopg2")}${readSecrets({ "probe-key": "probe_key" })}
install -d -m 755 /run/cutover-probe
${PUT_FILE}
${putTlsFiles(PROBE_TLS, "root:root", { "ca.pem": tls!.caCert, "client.pem": tls!.clientCert }, { "client.key": "probe_key" })}`
        : `${installUnless('$py -c "import pymysql" 2>/dev/null', "python3-pymysql", "python3-pymysql")}${readSecrets({ "probe-password": "probe_password" })}
install -d -m 755 /run/cutover-probe
${PUT_FILE}
printf '[client]\\nuser=${PROBE_USER}\\npassword=%s\\n' "$probe_password" | put ${PROBE_CNF} 600 root:root config`}
[ "$reload_tls" = 0 ] || restart=1
put ${PROBE_PY} 644 root:root config <<'CUTOVER_PROBE'
${probePy(p).trim()}
CUTOVER_PROBE
pid=$(cat ${PROBE_PID} 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    [ "$restart" = 0 ] || kill "$pid"
else
    restart=1
fi
if [ "$restart" = 1 ]; then
    setsid $py ${PROBE_PY} </dev/null >/dev/null 2>&1 &
    echo $! > ${PROBE_PID}
    changed=1
fi
for _ in $(seq 1 40); do $py -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${APP_PORT}/health', timeout=1)" 2>/dev/null && break; sleep 0.25; done
$py -c "import urllib.request; print('probe:', urllib.request.urlopen('http://127.0.0.1:${APP_PORT}/health', timeout=1).read().decode().strip())" || fail "the probe app does not answer on port ${APP_PORT}"
if [ "$changed" = 1 ]; then echo "probe: changed"; else echo "probe: unchanged"; fi
`;
}
