// A routine `pulumi up` never replaces a host that holds data, and nothing that holds data
// can be deleted without an explicit act (protect): checked on the reference stacks under mocks.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Evaluation, evaluateStack } from "../../tools/offline";
import { replacements } from "../../tools/offline/replacements";
import { named, ofType, plain, stackDir, standalone } from "../helpers";
import { configProblems } from "../helpers";

const INSTANCE = "aws:ec2/instance:Instance";
const DROPLET = "digitalocean:index/droplet:Droplet";

describe("AWS: Debian publishes a newer image between two runs", () => {
    let first: Evaluation;
    let second: Evaluation;
    before(async () => {
        // The same keys in both runs, as state keeps them; only the image lookup's answer moves on.
        const keepIn = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-ami-"));
        const dir = stackDir({ aws: standalone("new") });
        first = (await evaluateStack({ stack: "aws", stackDir: dir, keepIn, newestDebianAmi: "ami-0a1b2c3d4e5f60718" })).main;
        second = (await evaluateStack({ stack: "aws", stackDir: dir, keepIn, newestDebianAmi: "ami-0fedcba9876543210" })).main;
        assert.equal(first.error, undefined, first.error?.message);
        assert.equal(second.error, undefined, second.error?.message);
    });

    it("replaces no instance: each keeps the image it was created with", () => {
        assert.ok(ofType(second, INSTANCE).length >= 3);
        assert.deepEqual(replacements(first, second), []);
    });
    it("a new instance still starts from the newest image", () => {
        assert.ok(ofType(second, INSTANCE).every((i) => plain(i.inputs).ami === "ami-0fedcba9876543210"));
    });
    it("protects the database host and keeps its root disk (its data) when the instance goes", () => {
        const db = named(second, INSTANCE, "new-pool-db-1");
        assert.equal(db.protect, true);
        assert.deepEqual(plain(db.inputs).rootBlockDevice, { encrypted: true, volumeType: "gp3", volumeSize: 100, deleteOnTermination: false });
        const app = named(second, INSTANCE, "new-pool-app-1");
        assert.equal(app.protect, false, "a stateless host is not protected");
        assert.equal(plain(app.inputs).rootBlockDevice.deleteOnTermination, true);
    });
});

describe("DigitalOcean: the database's data on a volume that outlives the droplet", () => {
    let e: Evaluation;
    before(async () => {
        const config = { ...standalone("old"), "cutover:pools": { edge: { count: 1, size: "s-2vcpu-4gb" }, db: { count: 1, size: "m-4vcpu-32gb", dataGb: 500 } } };
        e = (await evaluateStack({ stack: "do", stackDir: stackDir({ do: config }) })).main;
        assert.equal(e.error, undefined, e.error?.message);
    });

    it("gives the db droplet a protected volume of the configured size, attached to it", () => {
        const volume = named(e, "digitalocean:index/volume:Volume", "old-pool-old-db-1-data");
        assert.equal(volume.protect, true);
        assert.deepEqual({ size: plain(volume.inputs).size, region: plain(volume.inputs).region, name: plain(volume.inputs).name }, { size: 500, region: "ams3", name: "old-db-1-data" });
        const attachment = named(e, "digitalocean:index/volumeAttachment:VolumeAttachment", "old-pool-old-db-1-data");
        assert.equal(String(plain(attachment.inputs).dropletId), named(e, DROPLET, "old-pool-db-1").id);
        assert.equal(plain(attachment.inputs).volumeId, volume.id);
    });
    it("protects the db droplet and never rebuilds it for a new image; the edge is neither", () => {
        const db = named(e, DROPLET, "old-pool-db-1");
        assert.equal(db.protect, true);
        assert.ok(db.ignoreChanges.includes("image"));
        assert.equal(named(e, DROPLET, "old-pool-edge-1").protect, false);
    });
    it("mounts the volume at the database's directory before the database step runs", () => {
        const mount = named(e, "command:remote:Command", "old-pool-data-old-db-1");
        assert.match(plain(mount.inputs).create, /^dev=\/dev\/disk\/by-id\/scsi-0DO_Volume_old-db-1-data$/m);
        assert.match(plain(mount.inputs).create, /^mnt=\/var\/lib\/mysql$/m);
        const db = named(e, "command:remote:Command", "old-db-old-db-1");
        assert.ok(db.dependencies.includes(mount.urn), "the database step does not wait for the data volume");
    });
});

describe("disk sizes in config", () => {
    it("refuses a root disk size outside aws and a data volume outside db/cache droplets, naming the key", () => {
        assert.deepEqual(configProblems({ "cutover:pools": JSON.stringify({ edge: { count: 1, size: "s", rootGb: 50 }, db: { count: 1, size: "m" } }) }), [
            "cutover:pools.edge.rootGb: 50 is not allowed with provider digitalocean: a droplet's disk comes with its size; db and cache droplets keep their data on a volume (dataGb)",
        ]);
        assert.deepEqual(configProblems({ "cutover:pools": JSON.stringify({ edge: { count: 1, size: "s", dataGb: 50 }, db: { count: 1, size: "m" } }) }), [
            "cutover:pools.edge.dataGb: 50 is not allowed here: only db and cache droplets (provider digitalocean) have a data volume; on aws set rootGb",
        ]);
    });
});
