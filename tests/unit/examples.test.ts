// The case studies (examples/*): every stack plans and passes the policy pack as users run
// them, and decommissioning (phase detached) leaves the new site needing nothing of the old.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Evaluation, evaluateStack } from "../../tools/offline";
import { POLICY_PACK_DIR, runPolicies } from "../../tools/offline/analyzer";
import { PROJECT } from "../../tools/offline/evaluate";
import { readStackFile } from "../../tools/offline/stackfile";
import { ROOT, named, ofType, plain, withoutSecrets } from "../helpers";
import { isSecretValue } from "../../tools/offline";

const EXAMPLES = path.join(ROOT, "examples");

function run(tool: "plan" | "policy", ...args: string[]) {
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, `tools/${tool}.ts`), ...args], { cwd: ROOT, encoding: "utf8", timeout: 240_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Evaluates `stack` of an example (with its peer) after `edit` changed the stack file of `edited`, in a copy. */
async function evaluateEdited(example: string, stack: string, edited: string, edit: (yaml: string) => string) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cutover-${example}-`));
    try {
        for (const f of ["Pulumi.old.yaml", "Pulumi.new.yaml"]) fs.copyFileSync(path.join(EXAMPLES, example, f), path.join(dir, f));
        const file = path.join(dir, `Pulumi.${edited}.yaml`);
        const text = fs.readFileSync(file, "utf8");
        assert.notEqual(edit(text), text, `the edit did not change ${example}/Pulumi.${edited}.yaml`);
        fs.writeFileSync(file, edit(text));
        return await evaluateStack({ stack, stackDir: dir });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** Each example's new stack as evaluated by the first tests (the feature checks below read them). */
const evaluated = new Map<string, Evaluation>();
const examples = fs.readdirSync(EXAMPLES).filter((d) => fs.existsSync(path.join(EXAMPLES, d, "Pulumi.new.yaml"))).sort();

describe("examples: each case study's stacks plan and pass policy", () => {
    it("has the three case studies, each a pair of stacks and a README", () => {
        assert.deepEqual(examples, ["adido", "ghost", "onesignal"]);
        for (const e of examples) {
            for (const f of ["Pulumi.old.yaml", "Pulumi.new.yaml", "README.md"]) assert.ok(fs.existsSync(path.join(EXAMPLES, e, f)), `examples/${e}/${f} is missing`);
        }
    });

    // In process, as the CLIs do it (tools/offline): evaluating new evaluates old as its peer
    // first; each stack then goes through the policy pack over the Analyzer protocol.
    for (const example of examples) {
        it(`${example}: both stacks plan without error and pass every mandatory policy`, async () => {
            const dir = path.join(EXAMPLES, example);
            const r = await evaluateStack({ stack: "new", stackDir: dir });
            evaluated.set(example, r.main);
            const stacks: Array<[string, Evaluation | undefined, Record<string, string>]> = [
                ["new", r.main, r.stackFile.config],
                ["old", r.peer, readStackFile(dir, "old").config],
            ];
            for (const [stack, e, config] of stacks) {
                assert.ok(e, `${example}/${stack} was not evaluated`);
                assert.equal(e.error, undefined, `${example}/${stack}: ${e.error?.message}`);
                assert.ok(e.registrations.length > 20, `${example}/${stack}: only ${e.registrations.length} resources`);
                const run = await runPolicies(e.registrations, { packDir: POLICY_PACK_DIR, project: PROJECT, stack, config, preview: false });
                const mandatory = run.diagnostics.filter((d) => d.level === "mandatory");
                assert.deepEqual(mandatory.map((d) => `${d.policy}: ${d.message}`), [], `${example}/${stack}`);
            }
        });
    }

    it("the CLIs take an example's folder: npm run plan -- --live and npm run policy on onesignal", () => {
        const dir = path.join(EXAMPLES, "onesignal");
        const p = run("plan", "--stack", "new", "--dir", dir, "--live", "new");
        assert.equal(p.code, 0, p.out.slice(-3000) + p.err);
        assert.match(p.out, /✅ cutover@v0\.1\.0/);
        const section = p.out.slice(p.out.indexOf("If cutover:live were"));
        for (const step of ["precheck", "freeze", "switch", "resume"]) assert.match(section, new RegExp(`~ command:remote:Command  new-runbook-${step}\\n`));
        const q = run("policy", "--stack", "old", "--dir", dir);
        assert.equal(q.code, 0, q.out.slice(-3000) + q.err);
        assert.match(q.out, /0 mandatory, \d+ advisory violations/);
    });
});

describe("the case studies' features under mocks", () => {
    const stack = (example: string) => {
        const e = evaluated.get(example);
        assert.ok(e, `${example} was not evaluated (its plan test failed)`);
        return e;
    };
    const shown = (e: Evaluation) => JSON.stringify(withoutSecrets({ r: e.registrations.map((r) => [r.inputs, r.outputs]), o: e.outputs }));

    it("ghost: monitor alerts on the droplets' role tags; an encrypted, versioned, private backup bucket and the job on the db host", () => {
        const e = stack("ghost");
        const alerts = ofType(e, "digitalocean:index/monitorAlert:MonitorAlert").map((a) => plain(a.inputs));
        assert.deepEqual(alerts.map((a) => a.type).sort(), ["v1/insights/droplet/cpu", "v1/insights/droplet/disk_utilization_percent", "v1/insights/droplet/memory_utilization_percent"]);
        for (const a of alerts) {
            assert.deepEqual([...a.tags].sort(), ["cutover-new-app", "cutover-new-db", "cutover-new-edge"]);
            assert.deepEqual(a.alerts.emails, ["ops@ghost.example"]);
        }
        // The proxied edges admit HTTP only from Cloudflare: DigitalOcean's checkers would find them down from day one.
        assert.equal(ofType(e, "digitalocean:index/uptimeCheck:UptimeCheck").length, 0);
        const edges = ofType(e, "digitalocean:index/droplet:Droplet").filter((d) => plain(d.inputs).name.includes("-edge-")).map((d) => plain(d.outputs).ipv4Address).sort();
        assert.equal(edges.length, 2);
        assert.deepEqual(ofType(e, "cloudflare:index/healthcheck:Healthcheck").map((c) => plain(c.inputs).address).sort(), edges, "one Cloudflare health check per edge");
        assert.deepEqual(plain(ofType(e, "cloudflare:index/notificationPolicy:NotificationPolicy")[0].inputs).mechanisms.emails, [{ id: "ops@ghost.example" }]);
        const bucket = ofType(e, "aws:s3/bucket:Bucket").map((b) => plain(b.inputs)).find((b) => b.tags?.purpose === "backup");
        assert.ok(bucket, "no backup bucket");
        assert.equal(plain(ofType(e, "aws:s3/bucketVersioning:BucketVersioning")[0].inputs).versioningConfiguration.status, "Enabled");
        const block = plain(ofType(e, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")[0].inputs);
        assert.deepEqual([block.blockPublicAcls, block.blockPublicPolicy, block.ignorePublicAcls, block.restrictPublicBuckets], [true, true, true, true]);
        const job = named(e, "command:remote:Command", "new-backups-new-db-1");
        assert.match(plain(job.inputs.create) as string, /mysqldump --all-databases --single-transaction/);
        // The passphrase and the job's key reach the host on stdin only, and the output keeps the passphrase secret.
        assert.ok(isSecretValue(job.inputs.stdin));
        assert.ok(isSecretValue((e.outputs.backups as Record<string, unknown>).passphrase));
        assert.doesNotMatch(shown(e), /PRIVATE KEY-----\\n[A-Za-z0-9+/]/);
    });

    it("adido: RDS private and encrypted behind a site-only group; the relay port open to the site network only; the media bucket and its key", () => {
        const e = stack("adido");
        const rds = plain(ofType(e, "aws:rds/instance:Instance")[0].inputs);
        assert.deepEqual([rds.engine, rds.publiclyAccessible, rds.storageEncrypted, rds.deletionProtection], ["mysql", false, true, true]);
        assert.ok(isSecretValue(ofType(e, "aws:rds/instance:Instance")[0].inputs.password), "the RDS password is not a secret");
        const groups = ofType(e, "aws:ec2/securityGroup:SecurityGroup").map((g) => plain(g.inputs));
        const worker = groups.find((g) => g.tags?.role === "worker");
        const relay = worker.ingress.find((r: { fromPort: number }) => r.fromPort === 3306);
        assert.deepEqual(relay?.cidrBlocks, ["10.30.0.0/16"], "the relay port is not limited to the site network");
        const media = named(e, "command:remote:Command", "new-media-new-worker-1");
        assert.match(plain(media.inputs.create) as string, /rclone copy src:adido-media dst:cutover-new-media-/);
        assert.ok(isSecretValue(media.inputs.stdin));
        assert.match(String(plain(e.outputs.media)), /^s3:\/\/cutover-new-media-/);
        assert.ok(ofType(e, "aws:sns/topic:Topic").length >= 1 && ofType(e, "aws:cloudwatch/metricAlarm:MetricAlarm").length >= 2);
        // The load balancer admits HTTP only from Cloudflare: Cloudflare checks it, not Route 53.
        assert.equal(ofType(e, "aws:route53/healthCheck:HealthCheck").length, 0);
        const lb = plain(ofType(e, "aws:lb/loadBalancer:LoadBalancer")[0].outputs).dnsName;
        assert.deepEqual(ofType(e, "cloudflare:index/healthcheck:Healthcheck").map((c) => plain(c.inputs).address), [lb]);
    });

    it("onesignal: Cloudflare health checks of both edges and their notification policy; the four PostgreSQL runbook steps", () => {
        const e = stack("onesignal");
        const checks = ofType(e, "cloudflare:index/healthcheck:Healthcheck").map((c) => plain(c.inputs).address).sort();
        assert.deepEqual(checks, ["203.0.113.180", "203.0.113.181"]);
        assert.equal(plain(ofType(e, "cloudflare:index/notificationPolicy:NotificationPolicy")[0].inputs).alertType, "health_check_status_notification");
        const steps = ofType(e, "command:remote:Command").map((c) => c.name).filter((n) => n.startsWith("new-runbook-"));
        assert.deepEqual(steps.sort(), ["new-runbook-freeze", "new-runbook-precheck", "new-runbook-resume", "new-runbook-switch"]);
    });

    it("onesignal: Redis beside PostgreSQL is switched by the runbook; its passwords reach the steps only as secrets on stdin", () => {
        const e = stack("onesignal");
        const precheck = named(e, "command:remote:Command", "new-runbook-precheck");
        assert.match(String(plain(precheck.inputs.create)), /vetoed: Redis on dc-pg-1 is not a replica of bm-pg-1's/);
        const cachePasswords = ofType(e, "random:index/randomPassword:RandomPassword").filter((r) => r.name.endsWith("-cache-password"));
        assert.equal(cachePasswords.length, 1);
        for (const id of ["precheck", "switch", "resume"]) {
            const step = named(e, "command:remote:Command", `new-runbook-${id}`);
            assert.ok(isSecretValue(step.inputs.stdin), `${id}: stdin is not a secret`);
            assert.match(String(plain(step.inputs.stdin)), /--- cutover:cache-password\n\S+\n--- cutover:cache-peer-password\n\S+/, id);
            assert.doesNotMatch(String(plain(step.inputs.create)), /requirepass "[^%]/, id);
        }
    });

    it("onesignal: Redis added to the old site before the new one has a cache trusts the new site's CA already (from its db output)", async () => {
        const r = await evaluateEdited("onesignal", "old", "new", (yaml) => yaml.replace("  cutover:cache:\n    engine: redis\n    phase: replica\n", ""));
        assert.equal(r.main.error, undefined, r.main.error?.message);
        assert.equal(plain(r.peer?.outputs.cache) ?? null, null, "the new stack still has a cache");
        const newCa = String((plain(r.peer?.outputs.db) as { caCert: string }).caCert).trim();
        assert.match(newCa, /^-----BEGIN CERTIFICATE-----/);
        assert.ok(String(plain(named(r.main, "command:remote:Command", "old-cache-dc-pg-1").inputs.create)).includes(newCa), "the old Redis's stunnel does not trust the new site's CA");
    });

    it("onesignal: a peer whose Redis has a host of its own is refused, naming the key and both hosts", async () => {
        const r = await evaluateEdited("onesignal", "new", "old", (yaml) => yaml.replace("  cutover:edge:", "    - name: dc-redis-1\n      role: cache\n      publicAddress: 203.0.113.171\n      privateAddress: 10.60.0.31\n  cutover:edge:"));
        assert.equal(r.peer?.error, undefined, r.peer?.error?.message);
        assert.match(r.main.error?.message ?? "", /cutover:cache: the runbook switches a Redis that lives on the db host of both sites; the peer stack's Redis is on dc-redis-1, its db host is dc-pg-1/);
    });
});

describe("decommission: the new site detached needs nothing of the old one", () => {
    it("ghost: with phase detached and no peer, no resource of the new stack reads or names anything of the old site", async () => {
        const dir = path.join(EXAMPLES, "ghost");
        const old = (await evaluateStack({ stack: "old", stackDir: dir, withPeer: false })).main;
        assert.equal(old.error, undefined, old.error?.message);
        // What the old stack gives away: its host names, addresses and mesh addresses.
        const oldHosts = plain(old.outputs.hosts) as Array<{ name: string; publicAddress: string; privateAddress: string }>;
        const oldMesh = (plain(old.outputs.mesh) as { members: Array<{ meshAddress: string; node: string }> }).members;
        const oldValues = [...oldHosts.flatMap((h) => [h.name, h.publicAddress, h.privateAddress]), ...oldMesh.flatMap((m) => [m.meshAddress, m.node])];
        assert.ok(oldValues.length >= 12);

        const before = evaluated.get("ghost") ?? (await evaluateStack({ stack: "new", stackDir: dir })).main;
        assert.equal(before.error, undefined, before.error?.message);
        const names = (e: typeof before) => JSON.stringify(e.registrations.map((r) => r.inputs));
        assert.ok(oldValues.some((v) => names(before).includes(v)), "the migrating new site should reference the old one (the test could not fail otherwise)");

        const detached = await evaluateStack({
            stack: "new",
            stackDir: dir,
            config: { "cutover:peer": null, "cutover:live": "new", "cutover:database": JSON.stringify({ engine: "mysql", phase: "detached" }) },
        });
        const e = detached.main;
        assert.equal(e.error, undefined, e.error?.message);
        assert.equal(detached.peer, undefined);
        assert.deepEqual(ofType(e, "pulumi:pulumi:StackReference"), [], "a detached stack still reads the old stack");
        const inputs = names(e);
        for (const v of oldValues) assert.ok(!inputs.includes(v), `a resource of the detached new stack still names ${v} of the old site`);
        // The steps that take the ties away: replication account dropped, the old stack's key removed.
        const db = ofType(e, "command:remote:Command").find((c) => c.name === "new-db-new-db-1");
        assert.ok(db, "no database step");
        assert.match(plain(db.inputs.create) as string, /phase=detached|detached/);
        const authorize = ofType(e, "command:remote:Command").find((c) => c.name === "new-authorize-peer-new-db-1");
        assert.ok(authorize, "no step removes the old stack's runbook key");
        assert.match(plain(authorize.inputs.create) as string, /wanted=''/);
        assert.equal((plain(e.outputs.dns) as { live: string }).live, "new");
    });
});
