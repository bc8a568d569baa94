// The conventions every host script shares: strict bash, failures named by step and host,
// a `changed` flag for the "unchanged" report, packages installed only when missing.

/** Header of an idempotent ensure-script; `fail` prefixes messages with "<step> on <host>:". */
export function scriptHeader(step: string, host: string, about: string): string {
    return `#!/bin/bash
# ${about}, rendered by cutover.
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
fail() { echo "${step} on ${host}: $*" >&2; exit 1; }
changed=0
`;
}

/** Installs a Debian package when its command is missing (hosts the program did not build). */
export function installIfMissing(command: string, pkg: string): string {
    return `if ! command -v ${command} >/dev/null; then
    apt-get install -y -q ${pkg} >/dev/null 2>&1 || fail "${command} is missing and apt-get install ${pkg} failed"
    changed=1
fi
`;
}
