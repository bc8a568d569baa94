// Encrypted off-site backups (Ghost(Pro): S3) of the site's database: a job on the db
// host dumps, compresses, encrypts (AES-256, key from the stack) and streams the result
// to the bucket with rclone; nothing unencrypted touches the disk or the network.
import { DbEngine } from "../types";
import { PUT_FILE, installIfMissing, readSecrets, scriptHeader } from "../script";
import { MediaRemote, describeRemote, location, remoteEnv } from "../media/render";

export interface BackupPlan {
    engine: DbEngine;
    target: MediaRemote;
    /** Cron fields. */
    schedule: string;
}

export const BACKUP_JOB = "/usr/local/sbin/cutover-backup";
export const RESTORE_JOB = "/usr/local/sbin/cutover-restore";
export const BACKUP_ENV = "/etc/cutover/backup.env";
export const BACKUP_CRON = "/etc/cron.d/cutover-backup";
export const BACKUP_LAST = "/var/lib/cutover/backup-last";
export const BACKUP_LOG = "/var/log/cutover/backup.log";

const CIPHER = "openssl enc -aes-256-cbc -pbkdf2 -iter 200000 -salt -pass env:CUTOVER_BACKUP_PASSPHRASE";

function dumpCommand(engine: DbEngine): string {
    switch (engine) {
        case "mariadb":
            return "mariadb-dump --all-databases --single-transaction --routines --events --triggers --gtid --master-data=2";
        case "mysql":
            return "mysqldump --all-databases --single-transaction --routines --events --triggers --source-data=2";
        case "postgres":
            return "runuser -u postgres -- pg_dumpall --clean --if-exists";
    }
}

/** The job cron runs: one dump, streamed encrypted to the target, then checked there. */
export function backupJob(host: string, plan: BackupPlan): string {
    return `#!/bin/bash
# cutover backup of ${host}'s ${plan.engine} database to ${describeRemote(plan.target)}, rendered by cutover.
set -euo pipefail
. ${BACKUP_ENV}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
name="${host}/$stamp.sql.gz.enc"
${dumpCommand(plan.engine)} | gzip -6 | ${CIPHER} | rclone rcat "${location("dst", plan.target)}/$name"
size=$(rclone size --json "${location("dst", plan.target)}/$name" | sed -E 's/.*"bytes":([0-9]+).*/\\1/')
[ "\${size:-0}" -gt 0 ] || { echo "backup on ${host}: $name is empty in the target" >&2; exit 1; }
install -d -m 755 ${BACKUP_LAST.replace(/\/[^/]+$/, "")}
printf '%s %s %s\\n' "$stamp" "$name" "$size" > ${BACKUP_LAST}
echo "backup on ${host}: $name, $size bytes"
`;
}

/** Prints a backup, decrypted and decompressed: cutover-restore <host>/<stamp>.sql.gz.enc | mariadb */
export function restoreJob(plan: BackupPlan): string {
    return `#!/bin/bash
# cutover restore: prints a backup from ${describeRemote(plan.target)} as SQL, rendered by cutover.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 <host>/<stamp>.sql.gz.enc   (list: rclone lsf -R ${location("dst", plan.target)})" >&2; exit 2; }
. ${BACKUP_ENV}
rclone cat "${location("dst", plan.target)}/$1" | ${CIPHER} -d | gunzip
`;
}

/** Ensure-step: installs the job, the restore helper, their secrets (0600) and the cron entry. */
export function backupScript(host: string, plan: BackupPlan): string {
    const secrets: Record<string, string> = { "backup-passphrase": "passphrase" };
    if (plan.target.type === "s3") Object.assign(secrets, { "target-access-key-id": "dst_key_id", "target-secret-access-key": "dst_secret" });
    else secrets["target-private-key"] = "dst_key";
    const remote = remoteEnv("DST", "target", plan.target).split("\n");
    const exported = remote.filter((line) => line.startsWith("export "));
    return `${scriptHeader("backup", host, `cutover backup job on ${host}: ${plan.engine} to ${describeRemote(plan.target)} at "${plan.schedule}"`)}
${PUT_FILE}
${["rclone", "openssl", "gzip"].map((tool) => installIfMissing(tool, tool)).join("")}${readSecrets(secrets)}
${remote.filter((line) => !line.startsWith("export ")).join("\n")}
# The job's secrets, readable by root only (the host holds the database itself anyway).
{
${exported.map((line) => {
        const [, key, value] = /^export (\w+)=(.*)$/.exec(line)!;
        return `    printf 'export ${key}=%q\\n' ${value}`;
    }).join("\n")}
    printf 'export CUTOVER_BACKUP_PASSPHRASE=%q\\n' "$passphrase"
} | put ${BACKUP_ENV} 600 root:root runtime
put ${BACKUP_JOB} 755 root:root runtime <<'CUTOVER_JOB'
${backupJob(host, plan).trim()}
CUTOVER_JOB
put ${RESTORE_JOB} 755 root:root runtime <<'CUTOVER_JOB'
${restoreJob(plan).trim()}
CUTOVER_JOB
put ${BACKUP_CRON} 644 root:root runtime <<'CUTOVER_CRON'
# cutover: encrypted off-site backup of ${host}
${plan.schedule} root ${BACKUP_JOB} >> ${BACKUP_LOG} 2>&1
CUTOVER_CRON
install -d -m 755 ${BACKUP_LOG.replace(/\/[^/]+$/, "")}
if [ "$changed" = 1 ]; then echo "backup: job installed, runs at \\"${plan.schedule}\\""; else echo "backup: unchanged"; fi
`;
}
