// Cloudflare records: the renderers directly, the component under mocks, the config checks.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { DnsPlan } from "../../components/config";
import { liveRecords, originRecords, qualified } from "../../components/dns/records";
import { Evaluation, evaluateStack } from "../../tools/offline";
import { configProblems, ofType, plain, referenceConfig, stackDir, standalone } from "../helpers";

const plan: DnsPlan = { zoneId: "0123456789abcdef0123456789abcdef", zone: "example.com", names: ["@", "www", "shop-1"], origin: "origin", ttl: 60, adopt: {} };

describe("DNS record renderers", () => {
    it("flipping live changes the content of the public names only, never a type, name or count", () => {
        const before = liveRecords(plan, "old", true);
        const after = liveRecords(plan, "new", true);
        const shape = (rs: typeof before) => rs.map((r) => [r.key, r.name, r.type, r.proxied, r.ttl].join(" "));
        assert.deepEqual(shape(after), shape(before));
        assert.deepEqual(before.map((r) => r.content), ["old.origin.example.com", "old.origin.example.com", "old.origin.example.com"]);
        assert.deepEqual(after.map((r) => r.content), ["new.origin.example.com", "new.origin.example.com", "new.origin.example.com"]);
    });
    it("names the apex by the zone itself and uses the automatic TTL only when proxied", () => {
        assert.equal(qualified("@", "example.com"), "example.com");
        assert.equal(liveRecords(plan, "old", true)[0].ttl, 1);
        assert.equal(liveRecords(plan, "old", false)[0].ttl, 60);
    });
    it("keeps origins DNS-only: one A per edge host, or a CNAME to the load balancer", () => {
        assert.deepEqual(originRecords("old", plan, { addresses: ["192.0.2.10", "192.0.2.11"] }).map((r) => [r.key, r.name, r.type, r.content, r.proxied]), [
            ["origin-1", "old.origin.example.com", "A", "192.0.2.10", false],
            ["origin-2", "old.origin.example.com", "A", "192.0.2.11", false],
        ]);
        assert.deepEqual(originRecords("new", plan, { hostname: "lb.eu-west-1.elb.amazonaws.com" }).map((r) => [r.type, r.content]), [["CNAME", "lb.eu-west-1.elb.amazonaws.com"]]);
    });
    it("adopts an existing record by Cloudflare's import id <zone>/<record>", () => {
        const adopted = liveRecords({ ...plan, adopt: { www: "fedcba9876543210fedcba9876543210" } }, "old", true);
        assert.equal(adopted.find((r) => r.key === "www")?.importId, "0123456789abcdef0123456789abcdef/fedcba9876543210fedcba9876543210");
        assert.equal(adopted.find((r) => r.key === "apex")?.importId, undefined);
    });
});

describe("DNS records under mocks", () => {
    const records = (e: Evaluation) => Object.fromEntries(ofType(e, "cloudflare:index/dnsRecord:DnsRecord").map((r) => [r.name, plain(r.inputs)]));
    let liveOld: Evaluation;
    let liveNew: Evaluation;
    let oldSite: Evaluation;
    // The old stack's outputs as deployed, served to the later evaluations (as the Pulumi service would).
    const fromOld = (config: Record<string, string>) => evaluateStack({ stack: "new", config, peerOutputs: oldSite.outputs }).then((r) => r.main);
    before(async () => {
        const first = await evaluateStack({ stack: "new" });
        liveOld = first.main;
        oldSite = first.peer!;
        liveNew = await fromOld({ "cutover:live": "new" });
        assert.equal(liveOld.error, undefined, liveOld.error?.message);
        assert.equal(liveNew.error, undefined, liveNew.error?.message);
    });
    it("points the public names at the live site's origin, read through the peer", () => {
        const r = records(liveOld);
        assert.equal(r["new-dns-apex"].content, "old.origin.example.com");
        assert.equal(r["new-dns-apex"].name, "example.com");
        assert.equal(r["new-dns-www"].proxied, true);
        assert.deepEqual(plain(liveOld.outputs.dns), { origin: "new.origin.example.com", live: "old", names: ["@", "www", "shop-1", "shop-2"] });
    });
    it("a flip to new changes only the public names' content", () => {
        const [a, b] = [records(liveOld), records(liveNew)];
        assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort(), "a flip adds or removes records");
        const changed = Object.keys(a).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
        assert.deepEqual(changed.sort(), ["new-dns-apex", "new-dns-shop-1", "new-dns-shop-2", "new-dns-www"]);
        for (const k of changed) {
            assert.equal(b[k].type, a[k].type, `${k} changed type`);
            assert.equal(b[k].content, "new.origin.example.com");
        }
    });
    it("keeps an origin record per edge host of its own site; the peer keeps its own", async () => {
        const r = records(liveOld);
        assert.equal(r["new-dns-origin-1"].name, "new.origin.example.com");
        assert.equal(r["new-dns-origin-1"].type, "A");
        assert.deepEqual(Object.keys(records(oldSite)), ["old-dns-origin-1"], "the stack without names keeps only its origin");
    });
    it("adopts existing records with the import option", async () => {
        const id = "fedcba9876543210fedcba9876543210";
        const dns = { ...(referenceConfig("new")["cutover:dns"] as object), adopt: { "@": id } };
        const e = await fromOld({ "cutover:dns": JSON.stringify(dns) });
        const apex = ofType(e, "cloudflare:index/dnsRecord:DnsRecord").find((r) => r.name === "new-dns-apex")!;
        assert.equal(apex.importId, `0123456789abcdef0123456789abcdef/${id}`);
    });
    it("refuses a live site that is neither this site nor the peer's, before any record changes", async () => {
        const e = await fromOld({ "cutover:live": "elsewhere" });
        assert.equal(e.error?.kind, "config");
        assert.match(e.error!.message, /cutover:live: "elsewhere" is not allowed: it is neither this site \(new\) nor the peer's \(old\)/);
    });
    it("refuses to point at a peer that publishes no origin", async () => {
        const { "cutover:dns": _d, ...oldWithoutDns } = referenceConfig("old") as Record<string, unknown>;
        const e = (await evaluateStack({ stack: "new", stackDir: stackDir({ old: oldWithoutDns, new: referenceConfig("new") }) })).main;
        assert.equal(e.error?.kind, "config");
        assert.match(e.error!.message, /the peer publishes no origin record old\.origin\.example\.com/);
    });
    it("uses the load balancer as the origin of an auto-scaled web tier", async () => {
        const config = { ...standalone("new"), "cutover:pools": { db: { count: 1, size: "r6i.large" }, app: { count: 2, size: "t3.medium", autoscaling: { min: 2, max: 4 } } } };
        const e = (await evaluateStack({ stack: "asg", stackDir: stackDir({ asg: config }) })).main;
        assert.equal(e.error, undefined, e.error?.message);
        const origin = records(e)["new-dns-origin"];
        assert.equal(origin?.type, "CNAME");
        assert.ok(origin.content, "the origin CNAME has the load balancer's name");
    });
});

describe("DNS config", () => {
    const problems = configProblems;
    const dns = (extra: object = {}) => JSON.stringify({ zoneId: plan.zoneId, zone: "example.com", names: ["@", "www"], ...extra });
    it("needs live with public names, and names with live", () => {
        assert.deepEqual(problems({ "cutover:dns": dns() }), ['cutover:live: is required with cutover:dns.names: the site the names point at (this stack\'s site "new" or the peer\'s)']);
        assert.deepEqual(problems({ "cutover:live": "new" }), ['cutover:live: "new" is not allowed without cutover:dns.names: set it in the stack that owns the public records']);
    });
    it("refuses the peer's site as live without a peer", () => {
        assert.deepEqual(problems({ "cutover:dns": dns(), "cutover:live": "old" }), ['cutover:live: "old" is not allowed: it is not this site ("new") and there is no cutover:peer to serve it']);
    });
    it("names bad zone ids, duplicate names and adoptions of names it does not manage", () => {
        assert.ok(problems({ "cutover:dns": dns({ zoneId: "nope" }), "cutover:live": "new" }).some((p) => p === 'cutover:dns.zoneId: "nope" is not allowed: must be a Cloudflare zone id (32 hex digits)'));
        assert.ok(problems({ "cutover:dns": dns({ names: ["www", "www"] }), "cutover:live": "new" }).includes('cutover:dns.names[1]: "www" is not allowed: listed twice'));
        assert.ok(problems({ "cutover:dns": dns({ adopt: { shop: plan.zoneId } }), "cutover:live": "new" }).includes('cutover:dns.adopt.shop: is not allowed: "shop" is not in cutover:dns.names'));
    });
});
