// The old lab site as a live legacy site, before the program ever ran on it: what the case
// studies started from. nginx on the edge host proxies to an app on 2368 (Ghost's port, not
// the program's 8080); MariaDB holds data and listens where the app hosts reach it; a cron
// job; and an earlier sshd drop-in that allows password logins, as cloud-init writes one.
import { Lab, LabError } from "./lab";

export const LEGACY_APP_PORT = 2368;
/** Rows of the legacy database, checked after the takeover. */
export const LEGACY_ROWS = 100;
export const LEGACY_CRON = "/etc/cron.d/legacy-sitemap";
/** The legacy app's database login, from the app hosts' network (a lab value, not a secret of the program). */
export const LEGACY_DB = { user: "ghost", password: "legacy-lab-only", database: "ghost" };

/** A small threaded HTTP app: answers every request with "legacy <host>", as the probe answers "<site> <host>". */
function legacyApp(host: string): string {
    return `import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = b"legacy ${host}\\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = reply
    def log_message(self, *args):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("0.0.0.0", ${LEGACY_APP_PORT}), H).serve_forever()
`;
}

function nginxSite(app: string): string {
    return `server {
    listen 80 default_server;
    listen [::]:80 default_server;
    location / {
        proxy_pass http://${app}:${LEGACY_APP_PORT};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
}
`;
}

async function must(lab: Lab, host: string, what: string, command: string): Promise<string> {
    const r = await lab.enter(host, command);
    if (r.code !== 0) throw new LabError(`legacy site: ${what} on ${host} failed (exit ${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
}

const PASSWORD_DROP_IN = "/etc/ssh/sshd_config.d/50-cloud-init.conf";

/** Turns the old site's hosts into a legacy site that serves through old-edge-1:80. */
export async function legacySite(lab: Lab, hosts = { edge: "old-edge-1", app: "old-app-1", db: "old-db-1" }): Promise<void> {
    const app = lab.host(hosts.app);
    for (const h of Object.values(hosts)) {
        await must(lab, h, "the password drop-in", `printf 'PasswordAuthentication yes\\n' > ${PASSWORD_DROP_IN} && kill -HUP "$(cat /run/sshd.pid)"`);
    }
    await must(lab, hosts.app, "the legacy app", `mkdir -p /srv/legacy && cat > /srv/legacy/app.py <<'APP'
${legacyApp(hosts.app)}APP
setsid nohup python3 /srv/legacy/app.py </dev/null >/var/log/legacy-app.log 2>&1 &`);
    await must(lab, hosts.app, "the cron job", `printf '# legacy: nightly sitemap\\n15 4 * * * www-data /usr/bin/true --sitemap\\n' > ${LEGACY_CRON}`);
    await must(lab, hosts.edge, "nginx", `rm -f /etc/nginx/sites-enabled/default && cat > /etc/nginx/conf.d/legacy.conf <<'SITE'
${nginxSite(app.address)}SITE
nginx -t 2>&1 && nginx`);
    // Debian's MariaDB listens on loopback; a legacy site opened it to its app hosts.
    await must(lab, hosts.db, "MariaDB", `sed -i 's/^bind-address.*/bind-address = 0.0.0.0/' /etc/mysql/mariadb.conf.d/50-server.cnf
/etc/init.d/mariadb start >/dev/null
mariadb <<'SQL'
CREATE DATABASE ${LEGACY_DB.database};
CREATE TABLE ${LEGACY_DB.database}.posts (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(100) NOT NULL);
INSERT INTO ${LEGACY_DB.database}.posts (title) SELECT CONCAT('post ', seq) FROM ${LEGACY_DB.database}.seq_1_to_${LEGACY_ROWS};
CREATE USER '${LEGACY_DB.user}'@'${app.address}' IDENTIFIED BY '${LEGACY_DB.password}';
GRANT ALL ON ${LEGACY_DB.database}.* TO '${LEGACY_DB.user}'@'${app.address}';
SQL`);
    // Serving before the program arrives, or the test proves nothing.
    for (let i = 0; i < 50; i++) {
        const r = await lab.client(`python3 -c 'import urllib.request; print(urllib.request.urlopen("http://${lab.host(hosts.edge).address}/", timeout=2).read().decode().strip())'`);
        if (r.stdout.trim() === `legacy ${hosts.app}`) return;
        await new Promise((res) => setTimeout(res, 200));
    }
    throw new LabError(`legacy site: ${hosts.edge}:80 does not serve the legacy app`);
}

/** The app host's path to its database, as the legacy app uses it (over the site network, not the mesh). */
export async function legacyRows(lab: Lab, hosts = { app: "old-app-1", db: "old-db-1" }): Promise<number> {
    const r = await lab.enter(hosts.app, `MYSQL_PWD='${LEGACY_DB.password}' mariadb --connect-timeout=3 -h ${lab.host(hosts.db).address} -u ${LEGACY_DB.user} --batch --skip-column-names -e 'SELECT COUNT(*) FROM ${LEGACY_DB.database}.posts'`);
    if (r.code !== 0) throw new LabError(`legacy site: ${hosts.app} cannot read its database on ${hosts.db}: ${r.stderr.trim()}`);
    return Number(r.stdout.trim());
}
