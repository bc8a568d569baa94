// The media sync step (rclone over SFTP) on real lab hosts: a tree of many small files
// copied from old-app-1 to new-app-1 by a third host, the first run killed half-way, a
// copied file corrupted, and the rerun resuming and leaving every checksum equal.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import { Lab } from "../../lab/lab";
import { labSkip } from "./requirements";
import { MEDIA_STATE, MediaPlan, mediaSyncScript } from "../../components/media/render";

const skip = labSkip(["rclone", "sshd"]);

// Enough that a kill after the first arrivals falls inside the copy; each file costs the rerun an SFTP checksum on both ends (2,000 took 171 s on CI).
const FILES = 600;
// Under /var: lab hosts overlay /etc, /var, /root and /home only; anything else is the machine's own.
/** Many small files in nested folders, sizes 200 B - 8 KiB, random content (Debian's python3). */
const GENERATE = `/usr/bin/python3 - <<'EOF'
import os, random
random.seed(7)
for i in range(${FILES}):
    d = "/var/www/media/%02d/%02d" % (i % 40, i % 7)
    os.makedirs(d, exist_ok=True)
    with open("%s/file-%05d.jpg" % (d, i), "wb") as f:
        f.write(os.urandom(random.randint(200, 8192)))
EOF`;
const SUMS = "cd /var/www/media && find . -type f -print0 | sort -z | xargs -0 sha256sum";

describe("media sync with rclone over SFTP, interrupted and resumed", { skip }, () => {
    let lab: Lab;
    let plan: MediaPlan;
    let stdin: string;
    before(async () => {
        lab = new Lab();
        await lab.up();
        assert.equal((await lab.enter("old-app-1", GENERATE)).code, 0);
        const key = fs.readFileSync(lab.keyPath, "utf8").trim();
        plan = {
            source: { type: "sftp", host: lab.host("old-app-1").address, user: "root", port: 22, path: "/var/www/media" },
            target: { type: "sftp", host: lab.host("new-app-1").address, user: "root", port: 22, path: "/var/www/media" },
            transfers: 8,
            checkers: 16,
            retries: 3,
            lowLevelRetries: 10,
            rewrite: { command: 'echo "$CUTOVER_MEDIA_FROM -> $CUTOVER_MEDIA_TO" > /tmp/rewritten', from: "https://cdn.old.example/", to: "https://media.example.com/" },
            run: 1,
        };
        stdin = `--- cutover:source-private-key\n${key}\n--- cutover:target-private-key\n${key}\n`;
        await install("/tmp/media-sync.sh", mediaSyncScript("new-db-1", plan));
        await lab.ssh("new-db-1", "umask 077; cat > /tmp/media-stdin", { stdin });
    });
    after(async () => {
        await Lab.down();
    });

    const install = (file: string, script: string) => lab.enter("new-db-1", `cat > ${file} <<'CUTOVER_EOF'\n${script}\nCUTOVER_EOF`);
    const count = async (host: string) => Number((await lab.enter(host, "find /var/www/media -type f 2>/dev/null | wc -l")).stdout.trim());

    it("a killed first run leaves part of the tree and no completion mark", async () => {
        // As if the operator's connection dropped: the step and everything it started is killed,
        // once the first files have arrived (however long listing the source takes here).
        await lab.enter("new-db-1", "setsid bash -c 'bash /tmp/media-sync.sh < /tmp/media-stdin > /tmp/first.out 2>&1' </dev/null >/dev/null 2>&1 & echo $! > /tmp/first.pid");
        for (let i = 0; i < 600 && (await count("new-app-1")) === 0; i++) await new Promise((r) => setTimeout(r, 100));
        await lab.enter("new-db-1", "kill -KILL -- -$(cat /tmp/first.pid); sleep 0.5");
        assert.equal((await lab.enter("new-db-1", "pgrep -x rclone || echo none")).stdout.trim(), "none", "rclone outlived the kill");
        assert.match((await lab.enter("new-db-1", "cat /tmp/first.out")).stdout, new RegExp(`holds ${FILES} files; copying with 8 transfers`));
        const copied = await count("new-app-1");
        assert.ok(copied > 0 && copied < FILES, `${copied} of ${FILES} copied: the interruption did not fall inside the copy`);
        assert.equal((await lab.enter("new-db-1", `test -e ${MEDIA_STATE} && echo marked || echo none`)).stdout.trim(), "none");
        assert.equal((await lab.enter("new-db-1", "test -e /tmp/rewritten && echo ran || echo not")).stdout.trim(), "not", "the URL rewrite ran before the copy was complete");
    });

    it("the rerun resumes: every file arrives with the same checksum, a corrupted one is copied again, then the rewrite hook runs", async () => {
        // A copied file damaged in place, same size: only a checksum comparison notices.
        const victim = (await lab.enter("new-app-1", "find /var/www/media -type f -size +1k | sort | head -1")).stdout.trim();
        assert.ok(victim, "no copied file to corrupt");
        await lab.enter("new-app-1", `printf 'XXXX' | dd of=${victim} bs=1 seek=0 conv=notrunc 2>/dev/null`);
        const r = await lab.ssh("new-db-1", "bash /tmp/media-sync.sh", { stdin, timeoutMs: 300_000 });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`media: ${FILES} files copied and verified \\(run 1\\)`));
        const [a, b] = await Promise.all([lab.enter("old-app-1", SUMS), lab.enter("new-app-1", SUMS)]);
        assert.equal(a.stdout.split("\n").filter(Boolean).length, FILES);
        assert.equal(b.stdout, a.stdout, "the trees differ after the resumed sync");
        assert.equal((await lab.enter("new-db-1", "cat /tmp/rewritten")).stdout.trim(), "https://cdn.old.example/ -> https://media.example.com/");
    });

    it("a third run with the same plan changes nothing; a missing source fails naming host, step and cause", async () => {
        const r = await lab.ssh("new-db-1", "bash /tmp/media-sync.sh", { stdin });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /media: unchanged \(run 1 copied and verified\)/);
        await install("/tmp/media-broken.sh", mediaSyncScript("new-db-1", { ...plan, lowLevelRetries: 1, source: { ...plan.source, host: "192.0.2.250" } as MediaPlan["source"] }));
        const f = await lab.ssh("new-db-1", "bash /tmp/media-broken.sh", { stdin, timeoutMs: 180_000 });
        assert.notEqual(f.code, 0);
        assert.match(f.stderr, /media-sync on new-db-1: cannot list sftp:\/\/root@192\.0\.2\.250:22\/var\/www\/media: .*(no route to host|connect)/);
        assert.doesNotMatch(f.stderr + f.stdout, /PRIVATE KEY/);
    });
});
