// `npm run rehearse`'s command line: a mistake is named before the lab is built (no root needed).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as path from "path";
import { ROOT } from "../helpers";

function rehearse(...args: string[]) {
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "tools/rehearse.ts"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    return { code: r.status, err: r.stderr };
}

describe("npm run rehearse's arguments", () => {
    for (const value of ["0", "1001", "2.5", "fast"]) {
        it(`--rate ${value} is refused, naming the flag, the value and what is allowed`, () => {
            const r = rehearse("--rate", value);
            assert.equal(r.code, 2, r.err);
            assert.match(r.err, new RegExp(`^--rate: "${value.replace(".", "\\.")}" is not allowed: writes per second, a whole number from 1 to 1000\\nusage: npm run rehearse .*--rate N`));
        });
    }

    it("--rate without a number is refused", () => {
        const r = rehearse("--no-clouds", "--rate");
        assert.equal(r.code, 2, r.err);
        assert.match(r.err, /^--rate: "" is not allowed/);
    });
});
