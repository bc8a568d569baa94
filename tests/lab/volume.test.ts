// The data volume step on a real block device (a loop device), real mkfs, blkid, findmnt and
// mount, in a mount namespace of its own with its own /etc/fstab: the way a db droplet's
// volume is formatted once, mounted at the data directory, and found again by a new host.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { labSkip } from "./requirements";
import { dataVolumeScript } from "../../components/volume/render";

const skip = labSkip(["losetup", "mkfs.ext4", "blkid", "findmnt", "unshare"]);

describe("the data volume step on a loop device", { skip, timeout: 120_000 }, () => {
    let dir: string;
    let device: string;
    let link: string;
    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-volume-"));
        fs.writeFileSync(path.join(dir, "disk.img"), Buffer.alloc(0));
        fs.truncateSync(path.join(dir, "disk.img"), 64 * 1024 * 1024);
        const r = spawnSync("losetup", ["--find", "--show", path.join(dir, "disk.img")], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        device = r.stdout.trim();
        // The stable name the cloud gives the volume, as a link to the device.
        link = path.join(dir, "scsi-0DO_Volume_new-db-1-data");
        fs.symlinkSync(device, link);
        fs.writeFileSync(path.join(dir, "fstab"), "# the host's fstab\n");
    });
    after(() => {
        if (device) spawnSync("losetup", ["-d", device]);
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** Runs `body` as one host: a new mount namespace, the host's fstab, the step's script at $script. */
    function host(mountPoint: string, body: string): { code: number; out: string; err: string } {
        fs.writeFileSync(path.join(dir, "step.sh"), dataVolumeScript({ host: "new-db-1", device: link, mountPoint }));
        const r = spawnSync("unshare", ["-m", "bash", "-c", `set -e; mount --make-rprivate /; mount --bind ${dir}/fstab /etc/fstab; script=${dir}/step.sh\n${body}`], { encoding: "utf8", timeout: 60_000 });
        return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
    }

    it("formats a blank volume, mounts it at the data directory by UUID, and a second run changes nothing", () => {
        const mnt = path.join(dir, "mysql");
        const r = host(mnt, `bash "$script"; bash "$script"; findmnt -rno SOURCE --mountpoint ${mnt}; echo data > ${mnt}/ibdata1; ls -A ${mnt}`);
        assert.equal(r.code, 0, r.err);
        const [first, second, source, files] = r.out.trim().split("\n");
        assert.match(first, new RegExp(`^data-volume: mounted ${device} \\(ext4\\) at ${mnt}$`));
        assert.equal(second, `data-volume: unchanged (${device} at ${mnt})`);
        assert.equal(source, device);
        assert.equal(files, "ibdata1", "lost+found is removed (MariaDB would take it for a database)");
        const uuid = spawnSync("blkid", ["-o", "value", "-s", "UUID", device], { encoding: "utf8" }).stdout.trim();
        assert.match(fs.readFileSync(path.join(dir, "fstab"), "utf8"), new RegExp(`^UUID=${uuid} ${mnt} ext4 defaults,nofail 0 2$`, "m"));
    });

    it("a new host finds the volume's data again: mounted, never formatted a second time", () => {
        const mnt = path.join(dir, "mysql");
        const r = host(mnt, `bash "$script"; cat ${mnt}/ibdata1`);
        assert.equal(r.code, 0, r.err);
        assert.match(r.out, /data-volume: mounted .* at .*\ndata\n$/);
        assert.equal(fs.readFileSync(path.join(dir, "fstab"), "utf8").split("\n").filter((l) => l.startsWith("UUID=")).length, 1, "fstab got a second line");
    });

    it("refuses to hide files already in the data directory on the root disk, naming the host and the step", () => {
        const mnt = path.join(dir, "postgresql");
        fs.mkdirSync(mnt);
        fs.writeFileSync(path.join(mnt, "PG_VERSION"), "15\n");
        const r = host(mnt, `bash "$script"`);
        assert.notEqual(r.code, 0);
        assert.match(r.err, new RegExp(`^data-volume on new-db-1: ${mnt} already holds files on the root disk; mounting the data volume would hide them`, "m"));
        assert.equal(fs.readFileSync(path.join(mnt, "PG_VERSION"), "utf8"), "15\n");
    });

    it("never formats a volume whose filesystem cannot be read (a failed blkid is not \"blank\")", () => {
        const mnt = path.join(dir, "redis");
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin, { recursive: true });
        fs.writeFileSync(path.join(bin, "blkid"), "#!/bin/sh\necho 'blkid: I/O error' >&2\nexit 4\n", { mode: 0o755 });
        fs.writeFileSync(path.join(bin, "mkfs.ext4"), "#!/bin/sh\necho FORMATTED\nexit 0\n", { mode: 0o755 });
        const r = host(mnt, `PATH=${bin}:$PATH bash "$script"`);
        assert.notEqual(r.code, 0);
        assert.doesNotMatch(r.out, /FORMATTED/);
        assert.match(r.err, /data-volume on new-db-1: cannot tell whether .* holds a filesystem \(blkid exit 4\); nothing was formatted/);
    });

    it("fails clearly when the volume is not attached", () => {
        fs.writeFileSync(path.join(dir, "step.sh"), dataVolumeScript({ host: "new-db-1", device: path.join(dir, "absent"), mountPoint: path.join(dir, "x") }).replace("seq 1 120", "seq 1 2").replace("after 120 s", "after 2 s"));
        const r = spawnSync("bash", [path.join(dir, "step.sh")], { encoding: "utf8" });
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /data-volume on new-db-1: the data volume .*absent is not attached after 2 s/);
    });
});
