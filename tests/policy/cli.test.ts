// `npm run policy` as CI runs it: exit codes and the report's shape.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as path from "path";
import { ROOT, stackDir, standalone } from "../helpers";

function policy(...args: string[]) {
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "tools/policy.ts"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("npm run policy", () => {
    for (const stack of ["old", "new"]) {
        it(`passes the reference stack ${stack} (exit 0)`, () => {
            const r = policy("--stack", stack);
            assert.equal(r.code, 0, r.out + r.err);
            assert.match(r.out, /✅ cutover@v0\.1\.0 \(local: policies\)/);
            assert.match(r.out, /0 mandatory, 0 advisory violations/);
        });
    }

    it("exits 1 and lists each mandatory violation under its pack, like pulumi preview", () => {
        const r = policy("--stack", "old", "--pack", path.join(__dirname, "fixtures/deny-droplets"));
        assert.equal(r.code, 1, r.out + r.err);
        assert.match(r.out, /❌ deny-droplets@v0\.0\.1/);
        assert.equal((r.out.match(/- \[mandatory\] {2}no-droplets {2}\(digitalocean:index\/droplet:Droplet: old-pool-/g) ?? []).length, 5);
        assert.match(r.out, /5 mandatory, 0 advisory violations/);
    });

    it("exits 0 on advisory violations only, and shows them", () => {
        const config = { ...standalone("old"), "cutover:pools": { edge: { count: 1, size: "s-1vcpu-2gb" }, db: { count: 1, size: "s-2vcpu-4gb" } } };
        const r = policy("--stack", "small", "--dir", stackDir({ small: config }));
        assert.equal(r.code, 0, r.out + r.err);
        assert.match(r.out, /- \[advisory\] {2}database-not-burstable {2}\(digitalocean:index\/droplet:Droplet: old-pool-db-1\)/);
    });

    it("exits 2 on an invalid stack config", () => {
        const r = policy("--stack", "bad", "--dir", stackDir({ bad: { ...standalone("old"), "cutover:provider": "linode" } }));
        assert.equal(r.code, 2);
        assert.match(r.err, /cutover:provider: "linode" is not one of/);
    });
});
