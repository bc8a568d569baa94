// Adido's RDS path, rendered: the stored procedures called, the relay, the switch's order,
// and passwords that never reach a command line.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RDS_PLAN } from "../helpers";
import { RDS_PROMOTE_SQL, rdsAttachSql, rdsReplicaScript, rdsSwitchScript, relayUnit } from "../../components/database/rds";
import { RunbookSettings } from "../../components/runbook/render";
import { REPL_USER } from "../../components/database/mysql";

const SETTINGS: RunbookSettings = { strategy: "freeze", freezeMs: 10000, catchupMs: 8000, maxLagSeconds: 10, postponeFile: "/etc/cutover/postpone", postponeMinutes: 60, holdMarginMs: 2000, parity: [], attempt: 1 };

describe("RDS as a replica of the old site", () => {
    it("attaches RDS to the relay at the dump's binlog position, over TLS, then starts replication", () => {
        assert.equal(
            rdsAttachSql(RDS_PLAN, "mysql-bin.000042", "1337", "$peer_password"),
            `CALL mysql.rds_set_external_master('10.30.1.17', 3306, '${REPL_USER}', '$peer_password', 'mysql-bin.000042', 1337, 1); CALL mysql.rds_start_replication;`,
        );
        assert.equal(RDS_PROMOTE_SQL, "CALL mysql.rds_stop_replication; CALL mysql.rds_reset_external_master;");
    });

    it("relays the private address to the old primary's mesh address", () => {
        assert.match(relayUnit(RDS_PLAN), /^ExecStart=\/usr\/bin\/socat TCP-LISTEN:3306,bind=10\.30\.1\.17,fork,reuseaddr TCP:10\.250\.1\.110:3306$/m);
    });

    it("seeds from one consistent dump whose header gives the position, and keeps passwords off command lines", () => {
        const s = rdsReplicaScript(RDS_PLAN);
        assert.match(s, /mysqldump .* --single-transaction --source-data=2 --set-gtid-purged=OFF/s);
        assert.match(s, /CHANGE \(MASTER\|REPLICATION SOURCE\) TO/);
        // The CALL with the password goes to mysql on stdin (printf is a shell builtin).
        assert.match(s, /printf '%s\\n' "CALL mysql\.rds_set_external_master\([^"]*'\$peer_password'[^"]*" \| rds/);
        assert.doesNotMatch(s, /--password|-p\$|-p"/);
        assert.match(s, /fail "RDS holds databases but does not replicate/);
    });

    it("switch to RDS: freeze with a deadline, wait for the exact position, promote, then commit", () => {
        const s = rdsSwitchScript(RDS_PLAN, "old", "new", SETTINGS);
        const order = ["CREATE EVENT cutover.unfreeze_at_deadline ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 10 SECOND", 'until [ "$(rds_position)" = "$want" ]', RDS_PROMOTE_SQL, "DROP EVENT IF EXISTS cutover.unfreeze_at_deadline\" ||"];
        const at = order.map((x) => s.indexOf(x));
        assert.ok(at.every((i) => i >= 0), `missing: ${order.filter((_, i) => at[i] < 0).join(" | ")}`);
        assert.deepEqual([...at].sort((a, b) => a - b), at, "the steps are out of order");
        assert.match(s, /after 8000 ms \(cutover:runbook\.catchupMs\)/);
        // Before promotion an abort unfreezes the old server.
        assert.match(s, /abort\(\) \{[\s\S]*SET GLOBAL read_only = OFF/);
    });

    it("switch back from a promoted RDS refuses, naming what to do", () => {
        const s = rdsSwitchScript(RDS_PLAN, "new", "old", SETTINGS);
        assert.match(s, /flipping back to old is not automated: make rs-db-1 a replica of RDS first/);
        assert.doesNotMatch(s, /rds_stop_replication/);
    });

    it("an RDS that cannot be read is never taken for a promoted one: the switch fails and says so", () => {
        // A stand-in mysql client that cannot reach anything, first on PATH.
        const bin = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-rds-"));
        fs.writeFileSync(path.join(bin, "mysql"), "#!/bin/sh\necho \"ERROR 2003 (HY000): Can't connect to MySQL server\" >&2\nexit 1\n", { mode: 0o755 });
        const r = spawnSync("bash", ["-c", rdsSwitchScript(RDS_PLAN, "old", "new", SETTINGS)], {
            input: "--- cutover:admin-password\nadmin-secret\n--- cutover:peer-password\npeer-secret\n",
            env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
            encoding: "utf8",
        });
        fs.rmSync(bin, { recursive: true, force: true });
        assert.notEqual(r.status, 0, `the switch succeeded: ${r.stdout}`);
        assert.doesNotMatch(r.stdout, /already the primary/);
        assert.match(r.stderr, /switch on new-worker-1: cannot read the replica status of RDS at cutover-new-1\.abc\.eu-west-1\.rds\.amazonaws\.com:3306; nothing was changed/);
    });
});
