// Config mistakes in the migration features (media, backups, monitoring, RDS) are named by
// key, value and what is allowed, before any resource exists.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseSiteConfig } from "../../components/config";
import { SMALL_SITE, configProblems } from "../helpers";

const s3Source = { type: "s3", endpoint: "ams3.digitaloceanspaces.com", provider: "DigitalOcean", bucket: "old-media" };
const sftpTarget = { type: "sftp", host: "198.18.2.30", path: "/var/www/media" };

describe("media, backups, monitoring and RDS config", () => {
    it("media: the host must be one of this stack's, the target is required off aws", () => {
        const p = configProblems({ "cutover:media": JSON.stringify({ host: "elsewhere-1", source: s3Source }) });
        assert.ok(p.includes('cutover:media.host: "elsewhere-1" is not a host of this stack; allowed: new-edge-1, new-db-1'), p.join("\n"));
        assert.ok(p.includes("cutover:media.target: is required with provider digitalocean (only an aws stack has a media bucket of its own)"), p.join("\n"));
    });

    it("media: each remote needs its kind of key, and the keys must be a secret", () => {
        const media = JSON.stringify({ host: "new-db-1", source: s3Source, target: sftpTarget });
        const missing = configProblems({ "cutover:media": media });
        assert.ok(missing.some((x) => x.startsWith("cutover:mediaCredentials.source: (value hidden) is required for the s3 source: accessKeyId and secretAccessKey")), missing.join("\n"));
        assert.ok(missing.some((x) => x.startsWith("cutover:mediaCredentials.target: (value hidden) is required for the sftp target: privateKey")), missing.join("\n"));
        const creds = JSON.stringify({ source: { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "hunter2hunter2" }, target: { privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----" } });
        const plain = configProblems({ "cutover:media": media, "cutover:mediaCredentials": creds });
        assert.deepEqual(plain, ["cutover:mediaCredentials: (value hidden) must be a secret: set it with pulumi config set --secret --path"]);
        assert.doesNotMatch(plain.join(" "), /hunter2|PRIVATE KEY/);
        const ok = parseSiteConfig({ ...SMALL_SITE, "cutover:media": media, "cutover:mediaCredentials": creds }, ["cutover:mediaCredentials"], "new");
        assert.equal(ok.media?.plan.transfers, 16);
        assert.equal(ok.media?.plan.target?.type, "sftp");
    });

    it("a malformed secret is never echoed, even when set in plain text", () => {
        const p = configProblems({ "cutover:media": JSON.stringify({ host: "new-db-1", source: s3Source, target: sftpTarget }), "cutover:mediaCredentials": JSON.stringify({ source: { accessKeyId: "hunter2" } }) });
        assert.doesNotMatch(p.join("\n"), /hunter2/);
    });

    it("backups need a db host; monitoring of existing hosts needs Cloudflare", () => {
        const noDb = configProblems({ "cutover:pools": JSON.stringify({ edge: { count: 1, size: "s" } }), "cutover:backups": JSON.stringify({ region: "eu-west-1" }) });
        assert.ok(noDb.includes("cutover:backups: is not allowed: the site has no db host to back up"), noDb.join("\n"));
        assert.ok(configProblems({ "cutover:backups": JSON.stringify({ region: "europe" }) }).some((x) => x.startsWith('cutover:backups.region: "europe" is not allowed: must be an AWS region such as eu-west-1')));
        const account = "fedcba9876543210fedcba9876543210";
        const notProxied = configProblems({ "cutover:edge": JSON.stringify({ proxied: false }), "cutover:monitoring": JSON.stringify({ emails: ["ops@example.com"], cloudflareAccountId: account }) });
        assert.deepEqual(notProxied, ["cutover:monitoring.cloudflareAccountId: is not allowed with provider digitalocean and an edge that is not proxied: its own uptime checks are used"]);
        // A proxied edge (the default on created hosts) is checked from Cloudflare, in the site's zone.
        assert.deepEqual(configProblems({ "cutover:monitoring": JSON.stringify({ emails: ["ops@example.com"] }) }), [
            "cutover:monitoring: needs cutover:dns with a proxied edge (cutover:edge.proxied), which admits HTTP only from Cloudflare: the edge's uptime checks are Cloudflare health checks in that zone",
            "cutover:monitoring.cloudflareAccountId: is required with a proxied edge (cutover:edge.proxied), which admits HTTP only from Cloudflare (the account that sends the health-check notifications)",
        ]);
        const dns = JSON.stringify({ zoneId: "0123456789abcdef0123456789abcdef", zone: "example.com" });
        assert.deepEqual(configProblems({ "cutover:dns": dns, "cutover:monitoring": JSON.stringify({ emails: ["ops@example.com"], cloudflareAccountId: account }) }), []);
    });

    it("RDS: aws and mysql only, no db pool, a worker to relay, a mesh", () => {
        const p = configProblems({ "cutover:database": JSON.stringify({ engine: "mariadb", managed: { instanceClass: "db.r6g.large", storageGb: 100 } }) });
        for (const expected of [
            "cutover:database.managed: is not allowed with provider digitalocean: RDS needs provider aws",
            'cutover:database.managed: is not allowed with engine "mariadb": the RDS path is MySQL (mysql.rds_set_external_master)',
            "cutover:database.managed: is not allowed with a db pool: RDS is the site's database",
            "cutover:database.managed: needs a worker pool: its first host relays replication between RDS and the old site over the mesh",
            "cutover:database.managed: needs cutover:mesh: the relay reaches the old site over it",
        ]) assert.ok(p.includes(expected), `missing: ${expected}\n${p.join("\n")}`);
        assert.ok(configProblems({ "cutover:database": JSON.stringify({ engine: "mysql", managed: { instanceClass: "r6g.large", storageGb: 100 } }) }).some((x) => x.startsWith('cutover:database.managed.instanceClass: "r6g.large" is not allowed: must be an RDS instance class such as db.r6g.large')));
    });
});
