// The inventory script's output as data, and its redaction of secrets in cron lines.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import { inventoryScript, parseInventory } from "../../components/inventory/render";

const SAMPLE = [
    "== packages", "mariadb-server\t1:10.11.6-0+deb12u1", "openssh-server\t1:9.2p1-2+deb12u3",
    "== listening", "tcp\t[::]:22\tsshd", "tcp\t0.0.0.0:22\tsshd", "udp\t127.0.0.1%lo:323\tchronyd", "tcp\t10.0.1.20:3306\tmariadbd",
    "== firewall", "ufw active", "allow from 203.0.113.0/28 to any port 22 proto tcp",
    "== cron", "/etc/cron.d/backup\t0 2 * * * root /usr/local/bin/backup",
    "== disks", "/\t100\t40\t60", "/var/lib/mysql\t5000\t4000\t1000",
    "== data", "/var/lib/mysql\t3999", "/srv\t",
    "== end", "",
].join("\n");

describe("inventory", () => {
    it("turns the script's sections into packages, sockets, firewall, cron, disks and data", () => {
        const inv = parseInventory(SAMPLE);
        assert.deepEqual(inv.packages.map((p) => p.name), ["mariadb-server", "openssh-server"]);
        assert.deepEqual(inv.listening.map((l) => `${l.proto} ${l.address} ${l.port} ${l.process}`), ["tcp :: 22 sshd", "tcp 0.0.0.0 22 sshd", "udp 127.0.0.1 323 chronyd", "tcp 10.0.1.20 3306 mariadbd"]);
        assert.deepEqual(inv.firewall, { tool: "ufw", active: true, rules: ["allow from 203.0.113.0/28 to any port 22 proto tcp"] });
        assert.deepEqual(inv.cron, [{ source: "/etc/cron.d/backup", line: "0 2 * * * root /usr/local/bin/backup" }]);
        assert.deepEqual(inv.disks[1], { mount: "/var/lib/mysql", sizeKb: 5000, usedKb: 4000, availKb: 1000 });
        assert.deepEqual(inv.data, [{ path: "/var/lib/mysql", kb: 3999 }]);
    });

    it("refuses output cut short (a host that died mid-way is not an empty host)", () => {
        assert.throws(() => parseInventory(SAMPLE.slice(0, SAMPLE.indexOf("== disks"))), /incomplete: no section disks, data, end/);
    });

    it("redacts passwords, tokens and URL credentials in cron lines on the host", () => {
        const script = inventoryScript("h");
        const redact = script.slice(script.indexOf("redact()"), script.indexOf("\n", script.indexOf("redact()")));
        const lines = [
            "0 1 * * * root mysqldump -uroot -phunter2 ghost",
            "0 2 * * * root backup --password=hunter2 --api_key: hunter2",
            "0 3 * * * root curl https://user:hunter2@example.com/ping",
            "0 4 * * * root TOKEN=hunter2 /bin/job",
        ];
        const r = spawnSync("bash", ["-c", `${redact}\nredact`], { input: lines.join("\n"), encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        assert.doesNotMatch(r.stdout, /hunter2/);
        assert.match(r.stdout, /-p\[redacted\] ghost/);
        assert.match(r.stdout, /https:\/\/\[redacted\]@example\.com/);
    });
});
