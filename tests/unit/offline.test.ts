// The offline evaluator keeps its worker processes for the next evaluation: nothing of one
// evaluation may reach the next (config, resources, the program's modules).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Evaluation, endIdleWorkers, evaluateStack } from "../../tools/offline";
import { stackDir, standalone } from "../helpers";

/** What the engine would receive, in a comparable form. */
const wire = (e: Evaluation) => JSON.stringify({ registrations: e.registrations, outputs: e.outputs, error: e.error });

describe("offline evaluation in reused workers", () => {
    it("evaluates a stack the same in a worker that evaluated other stacks before as in a new one", async () => {
        const keepIn = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-offline-"));
        // Another site, with other config and other resources, evaluated between the two.
        const dir = stackDir({ small: standalone("old"), other: standalone("new") });
        endIdleWorkers();
        const fresh = (await evaluateStack({ stack: "small", stackDir: dir, keepIn })).main;
        assert.equal(fresh.error, undefined);
        const other = (await evaluateStack({ stack: "other", stackDir: dir, keepIn })).main;
        assert.equal(other.error, undefined);
        const reused = (await evaluateStack({ stack: "small", stackDir: dir, keepIn })).main;
        assert.ok(other.registrations.some((r) => r.name.startsWith("new-")), "the other stack is not another site");
        assert.ok(!reused.registrations.some((r) => r.name.startsWith("new-")), "a resource of the stack evaluated before reached this one");
        assert.equal(wire(reused), wire(fresh));
        fs.rmSync(keepIn, { recursive: true, force: true });
    });

    it("a config error in one evaluation is not carried into the next", async () => {
        const dir = stackDir({ good: standalone("old"), bad: { ...standalone("old"), "cutover:live": "sideways" } });
        const bad = (await evaluateStack({ stack: "bad", stackDir: dir })).main;
        assert.equal(bad.error?.kind, "config");
        const good = (await evaluateStack({ stack: "good", stackDir: dir })).main;
        assert.equal(good.error, undefined);
        assert.ok(good.registrations.length > 10);
    });
});
