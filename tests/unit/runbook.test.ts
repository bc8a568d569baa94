// The cutover runbook: its config, what its scripts do in which order (the lab runs them
// on real daemons: tests/lab/runbook.test.ts), and its steps in the reference stacks.
import { rdsSwitchScript } from "../../components/database/rds";
import { RDS_PLAN } from "../helpers";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import { Flip, holdMs, precheckScript, resumeScript, switchScript, switchWindow } from "../../components/runbook/render";
import { switchMarks } from "../../components/runbook";
import { PgFlip, pgFreezeScript, pgPrecheckScript, pgResumeScript, pgSwitchScript } from "../../components/runbook/postgres";
import { authorizePeerScript } from "../../components/hosts/render";
import { evaluateStack, unwrapSecrets } from "../../tools/offline";
import { configProblems, ofType } from "../helpers";

const flip = (extra: Partial<Flip["settings"]> = {}): Flip => ({
    from: { site: "old", host: "old-db-1", meshAddress: "198.18.1.110", port: 3306 },
    to: { site: "new", host: "new-db-1", meshAddress: "198.18.2.110", port: 3306 },
    edges: [{ name: "old-edge-1", meshAddress: "198.18.1.10" }, { name: "new-edge-1", meshAddress: "198.18.2.10" }],
    flavor: "mariadb",
    cache: false,
    settings: { strategy: "freeze", freezeMs: 3000, catchupMs: 1500, maxLagSeconds: 10, postponeFile: "/etc/cutover/postpone", postponeMinutes: 60, holdMarginMs: 2000, parity: ["shop.orders"], attempt: 1, ...extra },
});

/** Line numbers of the first line matching each pattern, in order of the patterns. */
function order(script: string, patterns: RegExp[]): number[] {
    const lines = script.split("\n");
    return patterns.map((p) => {
        const i = lines.findIndex((l) => p.test(l));
        assert.ok(i >= 0, `no line matches ${p}`);
        return i;
    });
}

describe("runbook config", () => {
    const dns = JSON.stringify({ zoneId: "0123456789abcdef0123456789abcdef", zone: "example.com", names: ["@"] });
    it("keeps catch-up inside the freeze and the runbook where the flip is", () => {
        assert.deepEqual(configProblems({ "cutover:dns": dns, "cutover:live": "new", "cutover:runbook": JSON.stringify({ freezeMs: 2000, catchupMs: 2000 }) }), [
            "cutover:runbook.catchupMs: 2000 is not allowed: catch-up happens inside the freeze, so it must be shorter than cutover:runbook.freezeMs (2000)",
        ]);
        assert.deepEqual(configProblems({ "cutover:runbook": JSON.stringify({ freezeMs: 5000 }) }), ["cutover:runbook: is not allowed without cutover:live: the runbook runs in the stack that owns the flip"]);
    });
    it("with Redis beside MariaDB the freeze leaves the Redis pause a second at least (the freeze ends in whole seconds)", () => {
        const base = { "cutover:dns": dns, "cutover:live": "new", "cutover:database": JSON.stringify({ engine: "mariadb" }), "cutover:cache": JSON.stringify({ engine: "redis" }) };
        assert.deepEqual(configProblems({ ...base, "cutover:runbook": JSON.stringify({ freezeMs: 2000, catchupMs: 1000 }) }), [
            "cutover:runbook.freezeMs: 2000 is not allowed with Redis on the mariadb host: the runbook pauses Redis writes until the freeze's last whole second, so the freeze must last at least 2500 ms",
        ]);
        assert.deepEqual(configProblems({ ...base, "cutover:runbook": JSON.stringify({ freezeMs: 2500, catchupMs: 1000 }) }), []);
        const { "cutover:cache": _cache, ...withoutCache } = base;
        assert.deepEqual(configProblems({ ...withoutCache, "cutover:runbook": JSON.stringify({ freezeMs: 2000, catchupMs: 1000 }) }), []);
    });
    it("names bad values with the key and what is allowed", () => {
        const p = configProblems({ "cutover:dns": dns, "cutover:live": "new", "cutover:runbook": JSON.stringify({ freezeMs: 100, parity: ["orders"], postponeFile: "relative" }) });
        assert.ok(p.some((x) => x === "cutover:runbook.freezeMs: 100 is too small: must be at least 500"), p.join("\n"));
        assert.ok(p.some((x) => x.startsWith('cutover:runbook.parity[0]: "orders" is not allowed: must be a table as db.table')), p.join("\n"));
        assert.ok(p.some((x) => x.startsWith('cutover:runbook.postponeFile: "relative" is not allowed: must be an absolute path')), p.join("\n"));
    });
    it("refuses table parity with PostgreSQL (it compares WAL positions) and the probe app without a database it can write to", () => {
        assert.deepEqual(configProblems({ "cutover:dns": dns, "cutover:live": "new", "cutover:database": JSON.stringify({ engine: "postgres" }) }), []);
        assert.deepEqual(configProblems({ "cutover:dns": dns, "cutover:live": "new", "cutover:database": JSON.stringify({ engine: "postgres" }), "cutover:runbook": JSON.stringify({ parity: ["shop.orders"] }) }), [
            'cutover:runbook.parity: ["shop.orders"] is not allowed with engine postgres: its switch waits for the exact WAL position instead (CHECKSUM TABLE is MySQL\'s)',
        ]);
        assert.ok(configProblems({ "cutover:probe": "true" })[0].startsWith("cutover:probe: true is not allowed here"));
    });
});

describe("runbook scripts", () => {
    it("every read of the other site inside the switch aborts cleanly when the link is gone (set -e would exit without unfreezing)", () => {
        const s = switchWindow(flip({ parity: ["cutover_probe.writes", "shop.orders"] }));
        const reads = s.split("\n").filter((l) => /^\s*\w+=\$\((remote|pos_there|sql)\b/.test(l));
        assert.ok(reads.length >= 5, `only ${reads.length} reads found`);
        for (const l of reads) assert.match(l, /\|\| abort "/, `unguarded: ${l}`);
        assert.match(rdsSwitchScript(RDS_PLAN, "old", "new", flip().settings), /want=\$\(src_position\) \|\| abort/);
    });
    it("precheck: postponed first, then the hook, then replication and the edges; all before anything changes", () => {
        const s = precheckScript(flip({ precheck: "/usr/local/bin/ok-to-cut" }));
        const [postpone, hook, replica, edges] = order(s, [/while \[ -e \/etc\/cutover\/postpone \]/, /\( \/usr\/local\/bin\/ok-to-cut \)/, /is not receiving from old-db-1/, /cannot reach the edge/]);
        assert.ok(postpone < hook && hook < replica && replica < edges);
        assert.doesNotMatch(s, /read_only|RESET SLAVE|cutover live [a-z]|cutover hold/, "a precheck changes nothing (it only asks the edges where they route)");
    });
    it("switch: hold, freeze with a self-ending event, catch-up, parity, promote, validate, commit, route: in that order", () => {
        const s = switchWindow(flip({ validate: "curl -fs http://127.0.0.1/health" }));
        const marks = order(s, [/"cutover hold 5000"/, /CREATE EVENT cutover\.unfreeze_at_deadline ON SCHEDULE AT CURRENT_TIMESTAMP \+ INTERVAL 3 SECOND ON COMPLETION PRESERVE DO SET GLOBAL read_only = OFF; SET GLOBAL read_only = ON/, /lacks=\$\(missing/, /CHECKSUM TABLE shop\.orders/, /STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF/, /\( curl -fs http:\/\/127\.0\.0\.1\/health \)/, /DROP EVENT IF EXISTS cutover\.unfreeze_at_deadline"/, /"cutover live new"/]);
        assert.deepEqual([...marks].sort((a, b) => a - b), marks);
        assert.match(s, /SET SESSION sql_log_bin = 0; CREATE DATABASE/, "the freeze leaves no transaction in the binary log");
    });
    it("switch: every failure before the commit unfreezes, demotes and releases", () => {
        const s = switchWindow(flip());
        const commit = s.split("\n").findIndex((l) => /mark 4 committed/.test(l));
        const aborts = s.split("\n").map((l, i) => ({ l, i })).filter((x) => /\|\| abort|abort "/.test(x.l) && !/^abort\(\)/.test(x.l));
        assert.ok(aborts.length >= 8);
        assert.ok(aborts.every((a) => a.i < commit), "abort after the commit would unfreeze a committed cutover");
        const abortFn = s.slice(s.indexOf("abort() {"), s.indexOf("# t0"));
        assert.match(abortFn, /DROP EVENT IF EXISTS cutover\.unfreeze_at_deadline; SET GLOBAL read_only = OFF/);
        assert.match(abortFn, /CHANGE MASTER TO MASTER_HOST='198\.18\.1\.110'/);
        assert.match(abortFn, /"cutover hold off"/);
    });
    it("a retried switch (its precheck skipped as unchanged) re-checks on the hosts everything the precheck checks before the window starts", () => {
        const s = switchScript(flip({ precheck: "/usr/local/bin/ok-to-cut" }), true);
        const [earlier, postpone, hook, replica, lag, edges, window] = order(s, [/if \[ -s "\$run\/pid" \]/, /while \[ -e \/etc\/cutover\/postpone \]/, /\( \/usr\/local\/bin\/ok-to-cut \)/, /is not receiving from old-db-1/, /cutover:runbook\.maxLagSeconds/, /vetoed: cannot reach the edge/, /^setsid bash "\$run\/window\.sh"/]);
        assert.deepEqual([earlier, postpone, hook, replica, lag, edges, window], [earlier, postpone, hook, replica, lag, edges, window].sort((a, b) => a - b));
        assert.doesNotMatch(s.slice(0, s.indexOf("cat > \"$run/window.sh\"")), /read_only = ON|RESET SLAVE|cutover hold [0-9]/, "nothing is held or frozen before the window");
    });
    it("the write window runs detached from the operator's SSH session and survives a hangup; TERM aborts only before the commit", () => {
        const s = switchScript(flip(), true);
        assert.match(s, /^setsid bash "\$run\/window\.sh" "\$run" < "\$run\/secrets" > "\$run\/out" 2> "\$run\/err" &$/m);
        const w = switchWindow(flip());
        assert.match(w, /^trap '' HUP PIPE$/m);
        assert.match(w, /^trap '\[ "\$committed" = 1 \] \|\| abort "stopped by a signal"' TERM INT$/m);
        assert.ok(w.indexOf("trap '' HUP PIPE") < w.indexOf("# t0"), "the traps are set before anything is held");
        // The step's secrets reach the window on its stdin, from a 0600 file it removes once read.
        assert.match(s, /^\( umask 077; printf '%s\\n' "\$\{secrets_in:-\}" > "\$run\/secrets" \)$/m);
        assert.ok(w.indexOf('rm -f "$run/secrets"') > w.indexOf("peer_password=$(secret peer-password)") && w.indexOf('rm -f "$run/secrets"') < w.indexOf("# t0"));
    });
    it("holds the edges past the freeze deadline, so an unreachable outgoing site is writable before its held writes arrive", () => {
        for (const freezeMs of [500, 3000, 3500, 30000]) assert.ok(holdMs({ ...flip().settings, freezeMs }) >= Math.ceil(freezeMs / 1000) * 1000 + 1000, String(freezeMs));
    });
    it("switch with nothing to do, or dual-primary: routes the edges only", () => {
        for (const s of [switchScript(flip(), false), switchScript(flip({ strategy: "dual-primary" }), true)]) {
            assert.doesNotMatch(s, /read_only|RESET SLAVE|cutover hold [0-9]/);
            assert.match(s, /"cutover live new"/);
        }
    });
    it("any change to the flip changes every step's script, the precheck's too: no later step runs on the precheck's stale output", () => {
        // CI: a changed freezeMs after a completed PostgreSQL cutover re-ran only the freeze, with the
        // cutover's "needed=1", and it failed on the server that already followed the new one.
        const base = flip();
        const pg = (f: Flip): PgFlip => ({ from: f.from, to: f.to, edges: f.edges, settings: { ...f.settings, parity: [] }, cache: f.cache });
        const frozen = { stoppedAt: "0/3000028", timeline: "1", deadline: "1795398386482" };
        const steps = (f: Flip): Record<string, string> => ({
            precheck: precheckScript(f),
            switch: switchScript(f, true),
            resume: resumeScript(f, true, {}),
            "pg precheck": pgPrecheckScript(pg(f)),
            "pg freeze": pgFreezeScript(pg(f), true),
            "pg switch": pgSwitchScript(pg(f), true, frozen),
            "pg resume": pgResumeScript(pg(f), true, {}),
        });
        const changed = (v: unknown): unknown =>
            typeof v === "number" ? v + 1 : Array.isArray(v) ? [...v, "shop.extra"] : typeof v === "string" ? (v === "freeze" ? "dual-primary" : `${v}x`) : "true";
        const variants: [string, Flip][] = [
            ...(["freezeMs", "catchupMs", "maxLagSeconds", "postponeFile", "postponeMinutes", "precheck", "validate", "attempt", "holdMarginMs"] as const).map(
                (k): [string, Flip] => [`settings.${k}`, { ...base, settings: { ...base.settings, [k]: changed(base.settings[k]) } }]),
            ["an edge more", { ...base, edges: [...base.edges, { name: "new-edge-2", meshAddress: "198.18.2.11" }] }],
            ["the incoming port", { ...base, to: { ...base.to, port: 3307 } }],
            ["cache", { ...base, cache: true }],
        ];
        const before = steps(base);
        for (const [what, f] of variants) {
            const after = steps(f);
            for (const step of Object.keys(before)) assert.notEqual(after[step], before[step], `${what} changed, the ${step} script did not`);
        }
        assert.deepEqual(steps(flip()), before, "the same flip renders the same scripts: a second run runs no step");
    });
    it("resume: the outgoing server replicates from the incoming one and the audit record counts lost transactions", () => {
        const s = resumeScript(flip(), true, { held: "1795398386482", "caught-up": "1795398386500" });
        assert.match(s, /CHANGE MASTER TO MASTER_HOST='198\.18\.2\.110'/);
        assert.match(s, /\\"lostTransactions\\":\$lost,\\"held\\":\\"1795398386482\\",\\"caught-up\\":\\"1795398386500\\"/);
        // Nothing switched in this run: only a server an aborted attempt promoted is touched.
        const idle = resumeScript(flip(), false, {});
        assert.ok(idle.indexOf('!= primary ]; then say "resume: nothing to do"; exit 0; fi') < idle.indexOf("CHANGE MASTER"));
    });
    it("counts missing MariaDB transactions per GTID domain", () => {
        // The awk helper, run for real.
        const helper = /missing\(\) \{ (awk .*); \}/.exec(switchScript(flip(), true))![1];
        const missing = (have: string, want: string) => spawnSync("bash", ["-c", `have="${have}"; want="${want}"; set -- "$have" "$want"; ${helper}`], { encoding: "utf8" }).stdout.trim();
        assert.equal(missing("0-1-100,1-2-5", "0-1-100,1-2-5"), "0");
        assert.equal(missing("0-1-97,1-2-5", "0-1-100,1-2-5"), "3");
        assert.equal(missing("0-1-100", "0-1-100,1-2-5"), "5");
        assert.equal(missing("0-1-120,1-2-9", "0-1-100,1-2-5"), "0", "more than wanted is not missing");
    });
    it("reads the switch's t0..t5 marks for the audit record", () => {
        const out = ["runbook: switch t0 held at=100 +5ms", "runbook: switch t1 frozen at=160 +65ms in-flight=0 position=0-1-5", "runbook: switch t2 caught-up at=200 +105ms waited=40", "runbook: switch t5 routed at=400 +305ms"].join("\n");
        assert.deepEqual(switchMarks(out), { held: "100", frozen: "160", "caught-up": "200", routed: "400", catchupWaitedMs: "40" });
    });
});

describe("the PostgreSQL runbook with Redis on the db hosts", () => {
    const pg = (cache: boolean): PgFlip => ({
        from: { site: "old", host: "old-db-1", meshAddress: "198.18.1.110", port: 5432 },
        to: { site: "new", host: "new-db-1", meshAddress: "198.18.2.110", port: 5432 },
        edges: [{ name: "old-edge-1", meshAddress: "198.18.1.10" }],
        settings: { ...flip().settings, parity: [], freezeMs: 5000, catchupMs: 3000 },
        cache,
    });
    const frozen = { stoppedAt: "0/3000028", timeline: "1", deadline: "1795398386482" };
    it("freeze: once per attempt (a retry runs without the precheck), the watchdog started before the server stops; the resume clears the mark", () => {
        const s = pgFreezeScript(pg(false), true);
        const [refuse, mark, hold, watchdog, stop] = order(s, [/this attempt's freeze already ran .* set cutover:runbook\.attempt to 2/, /^date -Is > "\$marker"$/, /"cutover hold /, /^setsid nohup bash -c/, /^cluster stop -m fast/]);
        assert.deepEqual([refuse, mark, hold, watchdog, stop], [refuse, mark, hold, watchdog, stop].sort((a, b) => a - b));
        assert.match(s, /^marker=\/var\/lib\/cutover\/switch\/old-new-1\.freeze$/m);
        assert.match(pgResumeScript(pg(false), true, {}), /^rm -f \/var\/lib\/cutover\/switch\/old-new-1\.freeze$/m);
    });
    it("switch: a retried switch refuses a freeze that has ended before it touches anything", () => {
        const s = pgSwitchScript(pg(true), true, frozen);
        const [spent, standby, pause, promote] = order(s, [/the freeze of this attempt ended at its deadline .* set cutover:runbook\.attempt to 2/, /is not a standby/, /rother CLIENT PAUSE/, /pg_promote/]);
        assert.ok(spent < standby && standby < pause && pause < promote);
        assert.match(s, /^\[ "\$\(now_ms\)" -lt "\$deadline" \] \|\| fail /m, "a refusal, not an abort: nothing was done");
    });
    it("without a cache the scripts do not touch Redis", () => {
        for (const s of [pgPrecheckScript(pg(false)), pgSwitchScript(pg(false), true, frozen), pgResumeScript(pg(false), true, {})]) assert.doesNotMatch(s, /redis|REPLICAOF/i);
    });
    it("precheck vetoes unless the incoming Redis follows the outgoing one with its link up", () => {
        const s = pgPrecheckScript(pg(true));
        assert.match(s, /vetoed: Redis on new-db-1 is not a replica of old-db-1's/);
        assert.match(s, /vetoed: Redis on new-db-1 has no link/);
        const [veto, say] = order(s, [/vetoed: Redis on new-db-1 is not a replica/, /^say "precheck needed=/]);
        assert.ok(veto < say);
    });
    it("switch: Redis is paused, caught up and promoted after the database caught up and before it is promoted; fenced and checked unchanged before the commit", () => {
        const s = pgSwitchScript(pg(true), true, frozen);
        const [dbCaught, pause, wait, promote, t2, pgPromote, fence, moved, counter, unchanged, t4, t5] = order(s, [
            /pg_last_wal_replay_lsn\(\), '\$stopped_at'/, /rother CLIENT PAUSE .* WRITE/, /until \[ "\$\(rinfo rlocal slave_repl_offset\)" -ge "\$cache_want" \]/, /rlocal REPLICAOF NO ONE/, /^mark 2 caught-up/, /pg_promote/, /rother CONFIG SET min-replicas-to-write 1 .*\|\| abort/, /^if \[ "\$cache_now" != "\$cache_want" \]; then$/, /rdb_changes_since_last_save persistence\)" = "\$cache_dirty" \]/, /\|\| abort "Redis on old-db-1 took writes after its pause ended/, /^mark 4 committed/, /^mark 5 routed/,
        ]);
        for (const [a, b] of [[dbCaught, pause], [pause, wait], [wait, promote], [promote, t2], [t2, pgPromote], [pgPromote, fence], [fence, moved], [moved, counter], [counter, unchanged], [unchanged, t4], [t4, t5]]) assert.ok(a < b, s);
        assert.match(s, /cache_want=\$\(rinfo rother master_repl_offset\)\n\[ -n "\$cache_want" \] \|\| abort/);
    });
    it("switch: an abort re-attaches the incoming Redis and unpauses the outgoing one before the edges release", () => {
        const s = pgSwitchScript(pg(true), true, frozen);
        const body = s.slice(s.indexOf("abort() {"), s.indexOf("\n}\n", s.indexOf("abort() {")));
        const [reattach, unfence, unpause, release] = order(body, [/rlocal REPLICAOF 127\.0\.0\.1 6390/, /rother CONFIG SET min-replicas-to-write 0/, /rother CLIENT UNPAUSE/, /cutover hold off/]);
        assert.ok(reattach < release && unfence < release && unpause < release);
    });
    it("resume: the outgoing Redis follows the incoming one through a tunnel to it, and a restart keeps that", () => {
        const s = pgResumeScript(pg(true), true, {});
        assert.match(s, /connect = 198\.18\.2\.110:6380/);
        assert.match(s, /checkIP = 198\.18\.2\.110/);
        assert.match(s, /^replicaof 127\.0\.0\.1 6390$/m);
        assert.match(s, /echo replica > \/var\/lib\/cutover\/cache-role/);
        const [follow, unfence] = order(s, [/rlocal REPLICAOF 127\.0\.0\.1 6390/, /rlocal CONFIG SET min-replicas-to-write 0/]);
        assert.ok(follow < unfence, "the fence comes off only once it is a (read-only) replica");
        assert.doesNotMatch(s, /-a "\$|--pass/, "passwords go in REDISCLI_AUTH, never on a command line");
    });
});

describe("the MariaDB runbook with Redis on the db hosts", () => {
    it("the reference stacks: a flip of cutover:live switches the Redis beside the database, with both sites' Redis passwords on stdin", async () => {
        const r = await evaluateStack({ stack: "new", config: { "cutover:live": "new" } });
        assert.equal(r.main.error, undefined, r.main.error?.message);
        const step = (id: string) => ofType(r.main, "command:remote:Command").find((c) => c.name === `new-runbook-${id}`);
        assert.match(unwrapSecrets(step("precheck")?.inputs.create) as string, /vetoed: Redis on new-db-1 is not a replica of old-db-1's/);
        for (const id of ["precheck", "switch", "resume"]) {
            const stdin = unwrapSecrets(step(id)?.inputs.stdin) as string;
            for (const section of ["peer-password", "cache-password", "cache-peer-password"]) assert.match(stdin, new RegExp(`^--- cutover:${section}$`, "m"), `${id}: no ${section}`);
            // Pulumi's mark of a secret value (its signature key and value).
            assert.equal((step(id)?.inputs.stdin as Record<string, unknown>)["4dabf18193072939515e22adb298388d"], "1b47061264138c4ac30d75fd1eb44270", `${id}: stdin is not a secret`);
        }
    });
    const withCache: Flip = { ...flip(), cache: true };
    it("switch: Redis is paused until the freeze's earliest end, caught up and promoted after the parity check and before the database; fenced and checked unchanged before the commit", () => {
        const w = switchWindow(withCache);
        const [deadline, frozen, parity, pause, promoteRedis, promoteDb, fence, unchanged, dropEvent, commit, routed] = order(w, [/^deadline=\$\(\( \$\(now_ms\) \+ 3000 - 1000 \)\)$/, /^mark 1 frozen/, /CHECKSUM TABLE shop\.orders/, /rother CLIENT PAUSE \$\(\( deadline - \$\(now_ms\) \)\) WRITE/, /rlocal REPLICAOF NO ONE/, /\|\| abort "promotion failed"/, /rother CONFIG SET min-replicas-to-write 1 .*\|\| abort/, /rdb_changes_since_last_save persistence\)" = "\$cache_dirty" \]/, /^remote "SET SESSION sql_log_bin = 0; DROP EVENT IF EXISTS/, /^mark 4 committed/, /^mark 5 routed/]);
        for (const [a, b] of [[deadline, frozen], [frozen, parity], [parity, pause], [pause, promoteRedis], [promoteRedis, promoteDb], [promoteDb, fence], [fence, unchanged], [unchanged, dropEvent], [dropEvent, commit], [commit, routed]]) assert.ok(a < b, w);
        const body = w.slice(w.indexOf("abort() {"), w.indexOf("\n}\n", w.indexOf("abort() {")));
        const [reattach, unpause, release] = order(body, [/rlocal REPLICAOF 127\.0\.0\.1 6390/, /rother CLIENT UNPAUSE/, /cutover hold off/]);
        assert.ok(reattach < release && unpause < release, "an abort gives the outgoing site its Redis back before writes are released");
    });
    it("resume: the outgoing Redis follows the incoming one; without a cache no script touches Redis", () => {
        const s = resumeScript(withCache, true, {});
        const [attach, follow] = order(s, [/CHANGE MASTER TO/, /rlocal REPLICAOF 127\.0\.0\.1 6390/]);
        assert.ok(attach < follow);
        assert.match(s, /printf '%s' "\$cache_peer_password" \| rlocal -x CONFIG SET masterauth/, "Redis's password is its own, not the database's peer_password");
        for (const t of [precheckScript(flip()), switchWindow(flip()), resumeScript(flip(), true, {})]) assert.doesNotMatch(t, /redis|REPLICAOF/i);
    });
});

describe("runbook access across stacks, under mocks", () => {
    it("the old site authorizes the new stack's deploy key on its db host; the new stack's runbook logs in there with it", async () => {
        const r = await evaluateStack({ stack: "old" });
        const oldSite = r.main;
        const newSite = r.peer!;
        assert.equal(oldSite.error, undefined, oldSite.error?.message);
        const access = unwrapSecrets(newSite.outputs.access) as { user: string; publicKey: string };
        assert.match(access.publicKey, /^ssh-ed25519 \S+/, "a created site publishes its deploy public key");
        const step = ofType(oldSite, "command:remote:Command").find((c) => c.name === "old-authorize-peer-old-db-1");
        assert.ok(step, "no authorize step on old-db-1");
        const script = unwrapSecrets(step.inputs.create) as string;
        assert.ok(script.includes(`${access.publicKey.split(" ").slice(0, 2).join(" ")} cutover-peer-runbook:new`), "the new stack's key is not authorized");
        assert.doesNotMatch(JSON.stringify(newSite.outputs.access), /PRIVATE KEY/);
    });
    it("a detached site takes the key away", () => {
        const script = authorizePeerScript("old-db-1", "new", undefined);
        assert.match(script, /grep -v " cutover-peer-runbook:" "\$keys" > "\$keys\.new"/);
        assert.match(script, /wanted=''/);
    });
});
