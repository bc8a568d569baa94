// Taking over a live legacy site: the old lab site serves through nginx before the program
// ever ran, a client load runs through it for the whole first `pulumi up -s old`, and the
// operator keeps checking SSH. Nothing the site served may be cut off.
import { after, before, describe, it } from "node:test";
import path from "path";
import assert from "node:assert/strict";
import { Lab } from "../../lab/lab";
import { labSkip } from "./requirements";
import { LAB_STACKS, Provisioned, provision } from "../../lab/runtime";
import { Write, underLoad } from "../../lab/flip";
import { LAB_PREFIX } from "../../lab/topology";
import { LEGACY_APP_PORT, LEGACY_CRON, LEGACY_ROWS, legacyRows, legacySite } from "../../lab/legacy";
import { unwrapSecrets } from "../../tools/offline";
import type { InventoryEntry } from "../../components/site";

const skip = labSkip(["nginx", "mariadbd", "python3", "ufw", "tincd"]);

const OLD = ["old-edge-1", "old-app-1", "old-db-1"];
// The existing edges are not the program's to replace (edge.manage false), and their HTTP is
// not restricted to Cloudflare unless the config says so (edge.proxied unset).
const ADOPT = { "cutover:edge": JSON.stringify({ manage: false }) };

const CONNECT_PROBE = path.resolve(__dirname, "../../lab/connect-probe.py");

/** What lab/connect-probe.py saw of one host's sshd port. */
interface Connects {
    sent: number;
    listening: number;
    refused: number;
    unanswered: number;
    longestGapMs: number;
}

interface SshCheck {
    host: string;
    ok: boolean;
    stderr: string;
}

/** Whether a login without a key is offered a password (the methods sshd announces). */
async function offersPassword(lab: Lab, host: string): Promise<boolean> {
    const r = await lab.operator(`ssh -v -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no -o PreferredAuthentications=none -o ConnectTimeout=5 root@${lab.host(host).address} true 2>&1`);
    const methods = /Authentications that can continue: (\S+)/.exec(r.stdout)?.[1];
    assert.ok(methods, `${host}: sshd announced no methods: ${r.stdout.slice(-400)}`);
    return methods.split(",").includes("password");
}

describe("adopting a live legacy site with the first pulumi up", { skip, timeout: 1_200_000 }, () => {
    let lab: Lab;
    let first: Provisioned;
    let writes: Write[] = [];
    const ssh: SshCheck[] = [];
    let passwordBefore: boolean[] = [];
    let connects: Record<string, Connects> = {};

    before(async () => {
        lab = new Lab();
        await lab.up();
        await legacySite(lab);
        passwordBefore = await Promise.all(OLD.map((h) => offersPassword(lab, h)));
        let done = false;
        // The operator checks every old host over SSH, a second apart, for the whole run.
        const poll = (async () => {
            while (!done) {
                for (const host of OLD) {
                    const r = await lab.ssh(host, "true", { timeoutMs: 15_000 });
                    ssh.push({ host, ok: r.code === 0, stderr: r.stderr.trim() });
                }
                await new Promise((r) => setTimeout(r, 1000));
            }
        })();
        // And whether each host's sshd takes new connections, every 5 ms: its reload is a moment a poll a second apart misses.
        const stop = `/tmp/${LAB_PREFIX}-adopt-connects.stop`;
        await lab.operator(`rm -f ${stop}`);
        const targets = OLD.map((h) => `--target ${lab.host(h).address}:22`).join(" ");
        const probe = lab.operator(`python3 ${CONNECT_PROBE} ${targets} --every 0.005 --stop-file ${stop}`, 1_000_000);
        try {
            writes = await underLoad(lab, { url: `http://${lab.host("old-edge-1").address}/`, client: "adopt", rate: 20, seconds: 900, tailMs: 2000 }, async () => {
                first = await provision(lab, LAB_STACKS.old, { config: ADOPT });
            });
        } finally {
            done = true;
            await poll;
            await lab.operator(`touch ${stop}`);
            const r = await probe;
            assert.equal(r.code, 0, `the connection probe failed: ${r.stderr}`);
            connects = Object.fromEntries(OLD.map((h) => [h, (JSON.parse(r.stdout) as Record<string, Connects>)[`${lab.host(h).address}:22`]]));
        }
    });
    after(async () => {
        await Lab.down();
    });

    it("serves every request through the legacy nginx while the program takes the site over", (t) => {
        const failed = writes.filter((w) => w.status !== 200);
        t.diagnostic(JSON.stringify({ requests: writes.length, failed: failed.length, firstUpSeconds: Math.round(first.ms / 100) / 10, steps: first.runs.length, maxLatencyMs: Math.max(...writes.map((w) => w.ms)) }));
        assert.ok(writes.length >= 20 * (first.ms / 1000) * 0.8, `only ${writes.length} requests in ${first.ms} ms`);
        assert.deepEqual(failed.map((w) => `${w.seq}: ${w.status}`), []);
        assert.deepEqual([...new Set(writes.map((w) => w.served))], ["legacy old-app-1"]);
    });

    it("admin SSH works throughout, and no new connection is refused while sshd reloads its settings", (t) => {
        assert.ok(ssh.length >= OLD.length * 5, `only ${ssh.length} SSH checks`);
        assert.deepEqual(ssh.filter((c) => !c.ok), []);
        t.diagnostic(JSON.stringify(connects));
        for (const host of OLD) {
            const c = connects[host];
            assert.ok(c.listening >= 1000, `${host}: only ${c.listening} of ${c.sent} SYNs answered`);
            // A SYN held while sshd reloads goes unanswered (a client resends it a second later); a refused one is an admin's failed ssh.
            assert.equal(c.refused, 0, `${host}: ${c.refused} new connections refused`);
            assert.ok(c.longestGapMs < 10_000, `${host}: took no connection for ${c.longestGapMs} ms`);
        }
    });

    it("password login, allowed by an earlier drop-in, is off afterwards (sshd's effective setting)", async () => {
        assert.deepEqual(passwordBefore, [true, true, true], "the legacy hosts did not offer passwords to begin with");
        for (const host of OLD) {
            assert.equal(await offersPassword(lab, host), false, `${host} still offers password logins`);
            assert.match((await lab.enter(host, "sshd -T | grep -i '^passwordauthentication'")).stdout, /^passwordauthentication no$/m);
        }
    });

    it("the inventory output lists what each host served; the app's port is kept, and reachable as before", async () => {
        const inventory = (unwrapSecrets(first.evaluation.outputs) as { inventory: Record<string, InventoryEntry> }).inventory;
        const listens = (host: string) => (inventory[host].observed?.listening ?? []).map((l) => `${l.port}/${l.proto} ${l.process}`);
        assert.ok(listens("old-edge-1").includes("80/tcp nginx"), listens("old-edge-1").join(", "));
        assert.ok(listens("old-app-1").includes(`${LEGACY_APP_PORT}/tcp python3`), listens("old-app-1").join(", "));
        assert.ok(listens("old-db-1").includes("3306/tcp mariadbd"), listens("old-db-1").join(", "));
        assert.ok(inventory["old-app-1"].observed?.cron.some((c) => c.source === LEGACY_CRON), "the cron job is not listed");
        assert.deepEqual((inventory["old-app-1"].kept ?? []).map((k) => `${k.rule.port}/${k.rule.protocol} ${k.process}`), [`${LEGACY_APP_PORT}/tcp python3`]);
        // UFW is on now, and the legacy app still takes connections from the edge's nginx.
        assert.match((await lab.enter("old-app-1", "ufw status")).stdout, new RegExp(`Status: active[\\s\\S]*${LEGACY_APP_PORT}/tcp +ALLOW`));
    });

    it("MariaDB keeps its data and still answers the app host where it did (site network, not only the mesh)", async () => {
        assert.equal(await legacyRows(lab), LEGACY_ROWS);
        assert.match((await lab.enter("old-db-1", "mariadb --batch --skip-column-names -e 'SELECT @@log_bin, @@bind_address'")).stdout, /^1\t0\.0\.0\.0$/m);
    });

    it("the next pulumi up runs no step", async () => {
        const again = await provision(lab, LAB_STACKS.old, { config: ADOPT });
        assert.deepEqual(again.runs.filter((r) => r.action !== "unchanged").map((r) => r.step), []);
    });

    it("a setting read before the program's drop-in that still allows passwords fails the firewall step, naming the host and what sshd says", async () => {
        // sshd_config above its Include line: sshd takes this value first, whatever the drop-ins say.
        await lab.enter("old-db-1", "sed -i '1i PasswordAuthentication yes' /etc/ssh/sshd_config");
        // Another admin range: every host's firewall step runs again.
        const wider = { ...ADOPT, "cutover:adminCidrs": JSON.stringify(["203.0.113.0/28", "198.51.100.0/28"]) };
        try {
            await assert.rejects(provision(lab, LAB_STACKS.old, { config: wider }), /step old-hostfw-old-db-1 on host old-db-1 failed during update: exit code 1[\s\S]*sshd still allows more than keys after \/etc\/ssh\/sshd_config\.d\/00-cutover\.conf: sshd -T says [^\n]*passwordauthentication=yes/);
        } finally {
            await lab.enter("old-db-1", "sed -i '1d' /etc/ssh/sshd_config");
        }
        // Fixed on the host, the same run completes: only firewall steps change (those the failure stopped, and old-db-1's).
        const fixed = await provision(lab, LAB_STACKS.old, { config: wider });
        const ran = fixed.runs.filter((r) => r.action !== "unchanged").map((r) => r.step);
        assert.ok(ran.includes("old-hostfw-old-db-1"), ran.join(", "));
        assert.deepEqual(ran.filter((s) => !s.startsWith("old-hostfw-")), []);
        assert.match((await lab.enter("old-db-1", "sshd -T | grep -i '^passwordauthentication'")).stdout, /^passwordauthentication no$/m);
    });
});
