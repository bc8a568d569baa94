// Object storage migration (Adido: 250,000 files / 30 GB from Cloud Files to S3) with
// rclone: copy with concurrency and retries, resumable (a rerun skips what already
// matches by checksum), verified by `rclone check`, then an optional URL-rewrite hook.
// Remotes are configured through RCLONE_CONFIG_* variables: no rclone.conf with keys on disk.
import { installIfMissing, readSecrets, scriptHeader } from "../script";

export type MediaRemote =
    | { type: "s3"; provider: "AWS" | "DigitalOcean" | "Other"; endpoint?: string; region?: string; bucket: string; path: string }
    | { type: "sftp"; host: string; user: string; port: number; path: string };

export interface MediaPlan {
    source: MediaRemote;
    target: MediaRemote;
    transfers: number;
    checkers: number;
    retries: number;
    lowLevelRetries: number;
    /** Run on the host after a verified copy, with CUTOVER_MEDIA_FROM / CUTOVER_MEDIA_TO set. */
    rewrite?: { command: string; from: string; to: string };
    /** Bumped to copy again (the delta since the last run). */
    run: number;
}

export const MEDIA_STATE = "/var/lib/cutover/media-sync";
export const MEDIA_LOG = "/var/log/cutover/media-sync.log";

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Exports an rclone remote named src or dst; its secrets are in the shell variables `readSecrets` filled. */
export function remoteEnv(name: "SRC" | "DST", side: "source" | "target", r: MediaRemote): string {
    const v = (key: string, value: string) => `export RCLONE_CONFIG_${name}_${key}=${value}`;
    const vars = side === "source" ? { id: "src_key_id", secret: "src_secret", key: "src_key" } : { id: "dst_key_id", secret: "dst_secret", key: "dst_key" };
    if (r.type === "s3") {
        return [
            v("TYPE", "s3"),
            v("PROVIDER", r.provider),
            ...(r.endpoint ? [v("ENDPOINT", q(r.endpoint))] : []),
            ...(r.region ? [v("REGION", q(r.region))] : []),
            v("ACCESS_KEY_ID", `"$${vars.id}"`),
            v("SECRET_ACCESS_KEY", `"$${vars.secret}"`),
            // Objects stay private; the bucket's own policy decides who reads them.
            v("ACL", "private"),
        ].join("\n");
    }
    // rclone reads key_pem as one line with "\\n" for each line break (assigned apart: a failure is not masked).
    return [`${vars.key}_pem=$(printf '%s' "$${vars.key}" | awk '{ printf "%s\\\\n", $0 }')`, v("TYPE", "sftp"), v("HOST", q(r.host)), v("USER", q(r.user)), v("PORT", String(r.port)), v("KEY_PEM", `"$${vars.key}_pem"`)].join("\n");
}

export function location(name: "src" | "dst", r: MediaRemote): string {
    return r.type === "s3" ? `${name}:${r.bucket}${r.path ? `/${r.path.replace(/^\/+/, "")}` : ""}` : `${name}:${r.path}`;
}

export function describeRemote(r: MediaRemote): string {
    return r.type === "s3" ? `s3://${r.bucket}${r.path ? `/${r.path}` : ""}${r.endpoint ? ` at ${r.endpoint}` : ""}` : `sftp://${r.user}@${r.host}:${r.port}${r.path}`;
}

export function mediaSyncScript(host: string, plan: MediaPlan): string {
    const secrets: Record<string, string> = {};
    for (const [side, r, prefix] of [["source", plan.source, "src"], ["target", plan.target, "dst"]] as const) {
        if (r.type === "s3") Object.assign(secrets, { [`${side}-access-key-id`]: `${prefix}_key_id`, [`${side}-secret-access-key`]: `${prefix}_secret` });
        else secrets[`${side}-private-key`] = `${prefix}_key`;
    }
    const src = location("src", plan.source);
    const dst = location("dst", plan.target);
    const runId = `${describeRemote(plan.source)} -> ${describeRemote(plan.target)} run ${plan.run}`;
    const tuning = `--transfers ${plan.transfers} --checkers ${plan.checkers} --retries ${plan.retries} --low-level-retries ${plan.lowLevelRetries}`;
    return `${scriptHeader("media-sync", host, `cutover media sync on ${host}: ${describeRemote(plan.source)} -> ${describeRemote(plan.target)} (run ${plan.run})`)}
run_id=${q(runId)}
if [ "$(cat ${MEDIA_STATE} 2>/dev/null)" = "$run_id" ]; then
    echo "media: unchanged (run ${plan.run} copied and verified)"
    exit 0
fi
${installIfMissing("rclone", "rclone")}${readSecrets(secrets)}
${remoteEnv("SRC", "source", plan.source)}
${remoteEnv("DST", "target", plan.target)}
install -d -m 755 ${MEDIA_STATE.replace(/\/[^/]+$/, "")} ${MEDIA_LOG.replace(/\/[^/]+$/, "")}
# Copy, never delete: the old site may still take uploads; a later run copies the delta.
# A rerun after an interruption skips every file whose checksum already matches.
count=$(rclone size --json ${src} --low-level-retries ${plan.lowLevelRetries} 2>>${MEDIA_LOG} | sed -E 's/.*"count":([0-9]+).*/\\1/') || fail "cannot list ${describeRemote(plan.source)}: $(grep -E 'ERROR|Failed' ${MEDIA_LOG} | tail -1)"
echo "media: ${describeRemote(plan.source)} holds $count files; copying with ${plan.transfers} transfers" >&2
# Progress every 15 s on stderr (the update shows it), and into the log on the host.
rclone copy ${src} ${dst} --checksum ${tuning} --stats 15s --stats-one-line --stats-log-level NOTICE --log-level NOTICE \\
    2> >(tee -a ${MEDIA_LOG} >&2) || fail "rclone copy failed with exit code $? (a rerun resumes; log: ${MEDIA_LOG})"
# Verify: every source file is in the target with the same size and checksum.
report=$(mktemp)
if ! rclone check ${src} ${dst} --one-way --checksum --checkers ${plan.checkers} --log-level NOTICE 2>"$report"; then
    cat "$report" >> ${MEDIA_LOG}
    fail "verification failed: $(grep -c ERROR "$report") files missing or different in the target, e.g. $(grep ERROR "$report" | head -3 | tr '\\n' ';')"
fi
rm -f "$report"
${plan.rewrite ? `# URL rewrite: only after every file is verified in its new place.
CUTOVER_MEDIA_FROM=${q(plan.rewrite.from)} CUTOVER_MEDIA_TO=${q(plan.rewrite.to)} bash -c ${q(plan.rewrite.command)} \\
    || fail "the URL-rewrite hook failed with exit code $?"
` : ""}printf '%s\\n' "$run_id" > ${MEDIA_STATE}
echo "media: $count files copied and verified (run ${plan.run})"
`;
}
