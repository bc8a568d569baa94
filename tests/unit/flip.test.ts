// The rehearsal's figures of a flip, from the writes the load generator saw and the runbook's audit record.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Write, heldServedBy } from "../../lab/flip";

const write = (seq: number, sent: number, served: string, status = 200): Write => ({ seq, sent, ms: 5, status, served });
const AUDIT = { held: "1000", routed: "2000" };

describe("writes held in the window", () => {
    it("names the sites that served the writes sent between t0 held and t5 routed, and only those", () => {
        const writes = [write(1, 900, "old old-app-1"), write(2, 1000, "new new-app-1"), write(3, 1999, "new new-app-1"), write(4, 2000, "new new-app-1")];
        assert.deepEqual(heldServedBy(writes, AUDIT), ["new new-app-1"]);
    });

    it("shows a write an edge released to the outgoing site at its own deadline", () => {
        const writes = [write(1, 1200, "new new-app-1"), write(2, 1500, "old old-app-1")];
        assert.deepEqual(heldServedBy(writes, AUDIT).sort(), ["new new-app-1", "old old-app-1"]);
    });

    it("leaves out failed writes, and is empty without the audit's marks (dual-primary holds nothing)", () => {
        assert.deepEqual(heldServedBy([write(1, 1500, "", 0)], AUDIT), []);
        assert.deepEqual(heldServedBy([write(1, 1500, "new new-app-1")], { routed: "2000" }), []);
        assert.deepEqual(heldServedBy([write(1, 1500, "new new-app-1")], undefined), []);
    });
});
