// The backup job on a real MariaDB primary provisioned by the program: installed by its
// ensure-step, run, stored encrypted on another lab host over SFTP, restored from there.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import { Lab } from "../../lab/lab";
import { labSkip } from "./requirements";
import { LAB_STACKS, provision } from "../../lab/runtime";
import { BACKUP_ENV, BACKUP_JOB, BACKUP_LAST, BackupPlan, RESTORE_JOB, backupScript } from "../../components/backup/render";

const skip = labSkip(["mariadbd", "rclone", "sshd"]);
const MARKER = "backup-marker-7f3a";

describe("encrypted off-site backup of the database", { skip }, () => {
    let lab: Lab;
    let stdin: string;
    let script: string;
    before(async () => {
        lab = new Lab();
        await lab.up();
        await provision(lab, LAB_STACKS.old);
        const key = fs.readFileSync(lab.keyPath, "utf8").trim();
        const plan: BackupPlan = {
            engine: "mariadb",
            target: { type: "sftp", host: lab.host("new-app-1").address, user: "root", port: 22, path: "/var/backups/cutover" },
            schedule: "30 2 * * *",
        };
        script = backupScript("old-db-1", plan);
        stdin = `--- cutover:backup-passphrase\ncorrect-horse-battery-staple-0123456789\n--- cutover:target-private-key\n${key}\n`;
        const r = await lab.enter("old-db-1", `mariadb -e "CREATE DATABASE IF NOT EXISTS shop; CREATE TABLE IF NOT EXISTS shop.orders (id INT PRIMARY KEY, note VARCHAR(64)); REPLACE INTO shop.orders VALUES (1, '${MARKER}')"`);
        assert.equal(r.code, 0, r.stderr);
    });
    after(async () => {
        await Lab.down();
    });

    it("installs the job, its root-only secrets and the cron entry; a second run changes nothing", async () => {
        const first = await lab.ssh("old-db-1", script, { stdin });
        assert.equal(first.code, 0, first.stderr);
        assert.match(first.stdout, /backup: job installed, runs at "30 2 \* \* \*"/);
        assert.equal((await lab.enter("old-db-1", `stat -c %a ${BACKUP_ENV}`)).stdout.trim(), "600");
        assert.match((await lab.enter("old-db-1", "cat /etc/cron.d/cutover-backup")).stdout, /^30 2 \* \* \* root \/usr\/local\/sbin\/cutover-backup/m);
        const again = await lab.ssh("old-db-1", script, { stdin });
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /backup: unchanged/);
    });

    it("the job stores the dump encrypted on the other host, and the restore helper gives the rows back", async () => {
        const run = await lab.enter("old-db-1", BACKUP_JOB);
        assert.equal(run.code, 0, run.stderr);
        const [stamp, name, size] = (await lab.enter("old-db-1", `cat ${BACKUP_LAST}`)).stdout.trim().split(" ");
        assert.match(stamp, /^\d{8}T\d{6}Z$/);
        assert.equal(name, `old-db-1/${stamp}.sql.gz.enc`);
        const stored = `/var/backups/cutover/${name}`;
        assert.equal((await lab.enter("new-app-1", `stat -c %s ${stored}`)).stdout.trim(), size);
        // Encrypted at rest: neither the marker nor gzip's magic bytes are readable there.
        assert.equal((await lab.enter("new-app-1", `grep -c ${MARKER} ${stored} || true`)).stdout.trim(), "0");
        assert.equal((await lab.enter("new-app-1", `head -c 8 ${stored}`)).stdout, "Salted__");
        const restored = await lab.enter("old-db-1", `${RESTORE_JOB} ${name} | grep -B1 "${MARKER}"`);
        assert.match(restored.stdout, new RegExp(`INSERT INTO \`orders\` VALUES\\s*\\(1,'${MARKER}'\\)`), restored.stderr);
    });

    it("a wrong passphrase cannot read the backup", async () => {
        const name = (await lab.enter("old-db-1", `cut -d' ' -f2 ${BACKUP_LAST}`)).stdout.trim();
        const r = await lab.enter("old-db-1", `sed -i 's/^export CUTOVER_BACKUP_PASSPHRASE=.*/export CUTOVER_BACKUP_PASSPHRASE=guess/' ${BACKUP_ENV} && ${RESTORE_JOB} ${name} | head -c 100`);
        assert.doesNotMatch(r.stdout, /CREATE|INSERT/);
        assert.match(r.stderr, /bad decrypt|gzip|not in gzip format/);
    });
});
