// The conventions every host script shares: strict bash, failures named by step and host,
// a `changed` flag for the "unchanged" report, packages installed only when missing.

/**
 * A script arrives as the text of \`bash -c\` over SSH. A login that is not root (Debian's AWS
 * images log in as admin; legacy hosts often as a deploy user) runs the same text again as
 * root through passwordless sudo, its stdin (the step's secrets) passed on; the text holds no
 * secret, and goes through a 0600 file, not a command line. Needs \`fail\`.
 */
export const AS_ROOT = `if [ "$(id -u)" != 0 ]; then
    sudo -n true 2>/dev/null || fail "the login user $(id -un) is not root and may not run sudo without a password (sudo -n)"
    [ -n "\${BASH_EXECUTION_STRING:-}" ] || fail "cannot run again as root: the script did not arrive as bash -c text"
    self=$(mktemp)
    printf '%s\\n' "$BASH_EXECUTION_STRING" > "$self"
    rc=0
    sudo -n /bin/bash "$self" || rc=$?
    rm -f "$self"
    exit "$rc"
fi`;

/**
 * A created host may still be in its first boot when sshd answers: cloud-init installing
 * packages (the dpkg lock) and writing the host firewall. Steps wait for it to finish (it
 * writes boot-finished), except the firewall script cloud-init itself runs then.
 */
export const FIRST_BOOT = `if [ -z "\${CUTOVER_FIRST_BOOT:-}" ] && [ -e /var/lib/cloud/instance ] && [ ! -e /var/lib/cloud/instance/boot-finished ]; then
    timeout 900 cloud-init status --wait >/dev/null 2>&1 || true
    [ -e /var/lib/cloud/instance/boot-finished ] || fail "cloud-init's first boot has not finished after 15 min: $(cloud-init status --long 2>&1 | tail -n 3 | tr '\\n' ' ')"
fi`;

/** Header of an idempotent ensure-script; `fail` prefixes messages with "<step> on <host>:". */
export function scriptHeader(step: string, host: string, about: string): string {
    return `#!/bin/bash
# ${about}, rendered by cutover.
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
fail() { echo "${step} on ${host}: $*" >&2; exit 1; }
${AS_ROOT}
${FIRST_BOOT}
changed=0
`;
}

/** apt-get that waits (10 min at most) for the package lock a first boot or unattended-upgrades holds. */
export const APT_GET = "apt-get -o DPkg::Lock::Timeout=600";

/** Installs a Debian package unless the shell test `present` holds; a failure names `what` is missing and apt's last lines. */
export function installUnless(present: string, pkg: string, what: string): string {
    return `if ! ${present}; then
    apt_out=$(${APT_GET} install -y -q ${pkg} 2>&1) || fail "${what} is missing and apt-get install ${pkg} failed: $(tail -n 3 <<< "$apt_out" | tr '\\n' ' ')"
    changed=1
fi
`;
}

/** Installs a Debian package when its command is missing (hosts the program did not build). */
export function installIfMissing(command: string, pkg: string): string {
    return installUnless(`command -v ${command} >/dev/null`, pkg, command);
}

/**
 * Reads the step's secrets from stdin (sections "--- cutover:<name>", see `secretStdin`)
 * into shell variables; `names` maps a section to its variable. Missing sections fail.
 */
export function readSecrets(names: Record<string, string>): string {
    const reads = Object.entries(names)
        .map(([section, variable]) => `${variable}=$(secret ${section})
[ -n "$${variable}" ] || fail "no ${section} on stdin"`)
        .join("\n");
    // Read once: a script that needs two groups of secrets (database and Redis) reads stdin a second time.
    return `# Secrets arrive on stdin, never in this text or on a command line.
[ -n "\${secrets_in+set}" ] || secrets_in=$(cat)
secret() { printf '%s\\n' "$secrets_in" | awk -v want="--- cutover:$1" '$0 == want { on = 1; next } /^--- cutover:/ { on = 0 } on'; }
${reads}`;
}

/**
 * \`put <path> <mode> <owner> <kind>\` writes stdin to a file only when its content differs,
 * and records the change: kind "config" sets restart=1, "tls" sets reload_tls=1, "runtime" (settings applied online) neither.
 */
export const PUT_FILE = `restart=0
reload_tls=0
put() {
    local path=$1 mode=$2 owner=$3 kind=$4 tmp
    tmp=$(mktemp)
    cat > "$tmp"
    if ! cmp -s "$tmp" "$path"; then
        install -D -m "$mode" -o "\${owner%%:*}" -g "\${owner##*:}" "$tmp" "$path"
        case "$kind" in config) restart=1 ;; tls) reload_tls=1 ;; esac
        changed=1
    fi
    rm -f "$tmp"
}`;

/**
 * Writes a TLS directory with `put` (needs PUT_FILE): certificates from the text,
 * private keys from shell variables filled by `readSecrets`, owned by the daemon's user.
 */
export function putTlsFiles(dir: string, owner: string, certs: Record<string, string>, keyVars: Record<string, string>): string {
    const certLines = Object.entries(certs).map(([file, pem]) => `put ${dir}/${file} 644 ${owner} tls <<'CUTOVER_PEM'
${pem.trim()}
CUTOVER_PEM`);
    const keyLines = Object.entries(keyVars).map(([file, variable]) => `printf '%s\\n' "$${variable}" | put ${dir}/${file} 600 ${owner} tls`);
    return [`install -d -m 750 -o ${owner.split(":")[0]} -g ${owner.split(":")[1]} ${dir}`, ...certLines, ...keyLines].join("\n");
}
