// The lab as a cloud: a droplet or an instance the program creates becomes a lab host,
// booted the way the cloud boots Debian (cloud-init with the resource's user data, the
// cloud's keys and login user), and a DigitalOcean volume becomes a loop device linked
// where the droplet looks for it. Called by the cloud mocks while the program runs; the
// cloud answers at once, as DigitalOcean and EC2 do, and the host finishes booting later.
// Modelled: first boot, login users, keys, sudo, the volume's device, and an auto-scaling
// group's instances (slots <group>-asg-<n>): launched from its launch template's user data,
// scaled to its desired capacity, and replaced one after another when the group names another
// template version (an instance refresh), each replacement healthy (its first boot finished)
// before the next instance goes. Not modelled: cloud firewalls and security groups (their
// rules are checked by the policy pack and the unit tests), the load balancer in front of a
// group and its health checks, images, sizes, regions.
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { CloudKind, cloudConfig, cloudHostInitScript, cloudMetaData } from "./render";
import { hostInitPid } from "./proc";

/** A lab host the cloud hands out under a host name: its address and namespace. */
export interface CloudSlot {
    kind: CloudKind;
    address: string;
    netns: string;
}

export interface CloudLab {
    /** The lab's folder. */
    dir: string;
    /** Slots by host name (the droplet's name, the instance's Name tag). */
    slots: Record<string, CloudSlot>;
}

export class CloudError extends Error {}

function folder(lab: CloudLab, name: string): string {
    return path.join(lab.dir, "cloud", name);
}

/** The slot a created host takes; a host the lab has no slot for is an error naming the slots. */
export function slotFor(lab: CloudLab, name: string, kind: CloudKind): CloudSlot {
    const slot = lab.slots[name];
    if (!slot || slot.kind !== kind) {
        const have = Object.entries(lab.slots).filter(([, s]) => s.kind === kind).map(([n]) => n);
        throw new CloudError(`the lab's ${kind} has no host ${name}; it has ${have.join(", ") || "none"} (lab/topology.ts CLOUD_HOSTS)`);
    }
    return slot;
}

/**
 * Boots a created host once (later runs of the program find it running). Returns at once:
 * sshd answers a few seconds later, cloud-init's last stages run after that.
 */
export function bootCloudHost(lab: CloudLab, name: string, kind: CloudKind, userData: string, publicKeys: string[]): CloudSlot {
    const slot = slotFor(lab, name, kind);
    const dir = folder(lab, name);
    if (fs.existsSync(path.join(dir, "booted"))) return slot;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dir, "user-data"), userData, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, "meta-data"), cloudMetaData(`i-lab-${name}`, name, publicKeys), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, "lab.cfg"), cloudConfig(kind));
    fs.writeFileSync(path.join(dir, "init.sh"), cloudHostInitScript(), { mode: 0o755 });
    // The host mounts its own /dev/disk over this (empty) folder.
    fs.mkdirSync("/dev/disk", { recursive: true });
    const out = fs.openSync(path.join(lab.dir, `${name}.log`), "a");
    const child = spawn("ip", ["netns", "exec", slot.netns, "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "--propagation", "private", "bash", path.join(dir, "init.sh"), name, dir], {
        detached: true,
        stdio: ["ignore", out, out],
    });
    child.unref();
    fs.closeSync(out);
    fs.writeFileSync(path.join(dir, "booted"), `${Date.now()}\n`);
    return slot;
}

/**
 * Attaches a DigitalOcean volume: a sparse file on a loop device (made once, blank, as a
 * new volume is before the data step formats it), linked in the droplet's /dev/disk/by-id
 * under the name DigitalOcean gives it. Waits (30 s at most) for the droplet's /dev/disk.
 */
export async function attachVolume(lab: CloudLab, droplet: string, volume: string, sizeGb: number): Promise<void> {
    const slot = slotFor(lab, droplet, "digitalocean");
    const image = path.join(lab.dir, "cloud", `${volume}.img`);
    let device = spawnSync("losetup", ["-j", image, "-O", "NAME", "-n"], { encoding: "utf8" }).stdout.trim().split("\n")[0] ?? "";
    if (!device) {
        if (!fs.existsSync(image)) {
            fs.writeFileSync(image, Buffer.alloc(0), { mode: 0o600 });
            // A lab volume is small whatever the stack asks for; the device is what matters.
            fs.truncateSync(image, Math.min(sizeGb, 1) * 1024 ** 3);
        }
        const r = spawnSync("losetup", ["--find", "--show", image], { encoding: "utf8" });
        if (r.status !== 0) throw new CloudError(`the lab cannot attach ${volume} to ${droplet}: losetup: ${r.stderr.trim()}`);
        device = r.stdout.trim();
    }
    const link = `/dev/disk/by-id/scsi-0DO_Volume_${volume}`;
    const deadline = Date.now() + 30_000;
    let last = "";
    while (Date.now() < deadline) {
        const init = hostInitPid(slot.netns);
        if (init) {
            const r = spawnSync("nsenter", ["-t", init, "-m", "sh", "-c", `mountpoint -q /dev/disk && ln -sfn ${device} ${link}`], { encoding: "utf8" });
            if (r.status === 0) return;
            last = r.stderr.trim();
        }
        await new Promise((res) => setTimeout(res, 200));
    }
    throw new CloudError(`the lab could not attach ${volume} to ${droplet} within 30 s (its /dev/disk is not mounted yet${last ? `: ${last}` : ""})`);
}

/** Detaches the loop devices of the lab's volumes (Lab.down). */
export function detachVolumes(dir: string): void {
    const cloud = path.join(dir, "cloud");
    if (!fs.existsSync(cloud)) return;
    for (const f of fs.readdirSync(cloud).filter((x) => x.endsWith(".img"))) {
        const devices = spawnSync("losetup", ["-j", path.join(cloud, f), "-O", "NAME", "-n"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
        for (const d of devices) spawnSync("losetup", ["-d", d.trim()]);
    }
}

/** An auto-scaling group as the lab runs it: its name, the instances it wants, what they boot from. */
export interface GroupSpec {
    name: string;
    desired: number;
    /** The launch template's version the group names: instances of another version are replaced. */
    version: string;
    /** The template's user data (decoded) and the key pair's public key. */
    userData: string;
    publicKeys: string[];
}

/** The slots of a group's instances, <group>-asg-1, -2, ... in order. */
export function groupSlots(lab: CloudLab, group: string): string[] {
    const prefix = `${group}-asg-`;
    return Object.keys(lab.slots)
        .filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)) && lab.slots[n].kind === "aws")
        .sort((a, b) => Number(a.slice(prefix.length)) - Number(b.slice(prefix.length)));
}

/** The template version a slot's instance was launched from ("" when none runs there). */
export function instanceVersion(lab: CloudLab, name: string): string {
    const file = path.join(folder(lab, name), "version");
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : "";
}

function launch(lab: CloudLab, name: string, g: GroupSpec): void {
    bootCloudHost(lab, name, "aws", g.userData, g.publicKeys);
    fs.writeFileSync(path.join(folder(lab, name), "version"), `${g.version}\n`);
}

/** Terminates the instance in a slot: every process of its namespace ends (its disk, a tmpfs, with them). */
async function terminate(lab: CloudLab, name: string): Promise<void> {
    const netns = lab.slots[name].netns;
    for (let attempt = 0; attempt < 100; attempt++) {
        const pids = spawnSync("ip", ["netns", "pids", netns], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
        if (pids.length === 0) {
            fs.rmSync(folder(lab, name), { recursive: true, force: true });
            return;
        }
        spawnSync("kill", ["-9", ...pids]);
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new CloudError(`the lab could not terminate the instance ${name}: processes of ${netns} do not end`);
}

/** Waits until the instance in a slot finished its first boot (cloud-init's boot-finished). */
async function healthy(lab: CloudLab, name: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        const init = hostInitPid(lab.slots[name].netns);
        if (init && spawnSync("nsenter", ["-t", init, "-m", "test", "-e", "/var/lib/cloud/instance/boot-finished"]).status === 0) return;
        await new Promise((r) => setTimeout(r, 250));
    }
    throw new CloudError(`the instance ${name} did not finish its first boot within ${timeoutMs / 1000} s (its log: ${path.join(lab.dir, `${name}.log`)})`);
}

/**
 * Brings a group's instances to its spec, as EC2 Auto Scaling does: launches the missing ones
 * at once (the call returns while they boot), terminates those past the desired capacity, and
 * replaces instances of another template version one at a time, each replacement healthy
 * before the next instance is terminated (the instance refresh; here inside the group's update,
 * where the provider would return once the refresh started).
 */
export async function scaleGroup(lab: CloudLab, g: GroupSpec): Promise<void> {
    const slots = groupSlots(lab, g.name);
    // A capacity that is not a count would read as 0 and terminate every instance.
    if (!Number.isInteger(g.desired) || g.desired < 0) throw new CloudError(`the lab's auto-scaling group ${g.name}: desired capacity ${g.desired} is not a count of instances`);
    if (g.desired > slots.length) {
        throw new CloudError(`the lab's auto-scaling group ${g.name} has room for ${slots.length} instances (${slots.join(", ") || "no slot"}); its desired capacity is ${g.desired} (lab/topology.ts)`);
    }
    const wanted = slots.slice(0, g.desired);
    for (const name of wanted) if (!instanceVersion(lab, name)) launch(lab, name, g);
    for (const name of slots.slice(g.desired)) if (instanceVersion(lab, name)) await terminate(lab, name);
    for (const name of wanted) {
        if (instanceVersion(lab, name) === g.version) continue;
        // The refresh's minimum healthy share: every other instance serves while this one goes.
        for (const other of wanted.filter((n) => n !== name)) await healthy(lab, other, 180_000);
        await terminate(lab, name);
        launch(lab, name, g);
        await healthy(lab, name, 180_000);
    }
}
