// The data volume of a stateful host (a DigitalOcean Volume): the database's directory lives
// on it, so the data outlives the droplet. Mounted before the database is installed.
import { scriptHeader } from "../script";
import { DbEngine, Role } from "../types";

export interface DataVolume {
    host: string;
    /** The block device as the host sees it (a stable /dev/disk/by-id path). */
    device: string;
    /** Where the data lives: the engine's directory. */
    mountPoint: string;
}

/** The directory a role's data lives in: the database's, or Redis's on a cache host. */
export function dataDirectory(role: Role, engine: DbEngine): string {
    if (role === "cache") return "/var/lib/redis";
    return engine === "postgres" ? "/var/lib/postgresql" : "/var/lib/mysql";
}

/** DigitalOcean attaches a volume as /dev/disk/by-id/scsi-0DO_Volume_<name>. */
export function digitalOceanVolumeDevice(volumeName: string): string {
    return `/dev/disk/by-id/scsi-0DO_Volume_${volumeName}`;
}

/**
 * Idempotent: waits for the device, formats it only when it holds no filesystem, mounts it
 * at the data directory through fstab (by UUID, so a reboot mounts it again). Never hides
 * data: a data directory that already holds files on the root disk is refused.
 */
export function dataVolumeScript(v: DataVolume): string {
    return `${scriptHeader("data-volume", v.host, `the data volume of ${v.host} at ${v.mountPoint}`)}
dev=${v.device}
mnt=${v.mountPoint}
for _ in $(seq 1 120); do [ -b "$dev" ] && break; sleep 1; done
[ -b "$dev" ] || fail "the data volume $dev is not attached after 120 s"
real=$(readlink -f "$dev") || fail "cannot resolve $dev"
current=$(findmnt -rno SOURCE --mountpoint "$mnt" || true)
if [ "$current" = "$real" ]; then
    echo "data-volume: unchanged ($real at $mnt)"
    exit 0
fi
[ -z "$current" ] || fail "$mnt is already a mount of $current, not of the data volume $real"
if [ -d "$mnt" ] && [ -n "$(ls -A "$mnt")" ]; then
    fail "$mnt already holds files on the root disk; mounting the data volume would hide them: move them onto the volume by hand (see README, data volumes)"
fi
# blkid exits 2 when the device holds no filesystem; any other failure is not "blank".
rc=0; fs=$(blkid -o value -s TYPE "$real") || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "cannot tell whether $real holds a filesystem (blkid exit $rc); nothing was formatted"
if [ "$rc" = 2 ]; then
    mkfs.ext4 -q -L data "$real" || fail "mkfs.ext4 $real failed"
    fs=ext4
fi
uuid=$(blkid -o value -s UUID "$real") || fail "cannot read the UUID of $real"
[ -n "$uuid" ] || fail "$real has no filesystem UUID"
if ! grep -q "^UUID=$uuid " /etc/fstab; then
    echo "UUID=$uuid $mnt $fs defaults,nofail 0 2" >> /etc/fstab
fi
install -d -m 755 "$mnt"
mount "$mnt" || fail "mounting $real at $mnt failed"
# An empty lost+found would look like a database to MariaDB; fsck makes it again when needed.
rmdir "$mnt/lost+found" 2>/dev/null || true
echo "data-volume: mounted $real ($fs) at $mnt"
`;
}
