// First-boot configuration of created hosts (cloud-init user data), and the step that lets
// the peer stack's runbook log in to the database host.
import { scriptHeader } from "../script";

export interface CloudInitInput {
    hostname: string;
    /** Admin public keys (the deploy key is installed by the cloud's own key mechanism). */
    authorizedKeys: string[];
    /** The host firewall script (UFW and key-only sshd), run before anything else listens. */
    firewallScript: string;
}

function indent(text: string, spaces: number): string {
    const pad = " ".repeat(spaces);
    return text
        .split("\n")
        .map((line) => (line === "" ? line : pad + line))
        .join("\n");
}

/**
 * The host is closed from its first boot: UFW comes up with default deny before the
 * program ever reaches it; later rule changes arrive through the firewall command, whose
 * steps wait for this first boot to finish (CUTOVER_FIRST_BOOT: this run must not wait for itself).
 */
export function cloudInit(i: CloudInitInput): string {
    const keys = i.authorizedKeys.map((k) => `  - ${JSON.stringify(k)}`).join("\n");
    return `#cloud-config
hostname: ${i.hostname}
preserve_hostname: false
ssh_pwauth: false
${i.authorizedKeys.length > 0 ? `ssh_authorized_keys:\n${keys}\n` : ""}package_update: true
packages:
  - ufw
write_files:
  - path: /usr/local/sbin/cutover-firewall
    permissions: "0700"
    content: |
${indent(i.firewallScript, 6)}
runcmd:
  - [env, CUTOVER_FIRST_BOOT=1, /usr/local/sbin/cutover-firewall]
`;
}

/** Marks the peer's key line in authorized_keys, so it can be replaced or removed. */
export const PEER_KEY_TAG = "cutover-peer-runbook";

/**
 * Authorizes the peer stack's deploy key for the login user (the runbook in the stack
 * that owns cutover:live logs in to both database hosts with its own key). No key
 * (the peer has none, or this site is detached): a key added earlier is removed.
 */
export function authorizePeerScript(host: string, peerSite: string, publicKey: string | undefined): string {
    const line = publicKey ? `${publicKey.trim().split(/\s+/).slice(0, 2).join(" ")} ${PEER_KEY_TAG}:${peerSite}` : "";
    return `${scriptHeader("authorize-peer", host, `peer runbook access on ${host}`)}
# The login user's keys (the peer's runbook logs in as that user), also when run through sudo.
login=\${SUDO_USER:-$(id -un)}
home=$(getent passwd "$login" | cut -d: -f6)
[ -n "$home" ] || fail "the login user $login has no home directory"
group=$(id -gn "$login")
keys=$home/.ssh/authorized_keys
install -d -m 700 -o "$login" -g "$group" "$home/.ssh"
touch "$keys"
chown "$login:$group" "$keys"
chmod 600 "$keys"
wanted=${line ? `'${line}'` : "''"}
current=$(grep " ${PEER_KEY_TAG}:" "$keys" || true)
if [ "$current" = "$wanted" ]; then
    echo "authorize-peer: unchanged"
    exit 0
fi
grep -v " ${PEER_KEY_TAG}:" "$keys" > "$keys.new" || true
[ -z "$wanted" ] || echo "$wanted" >> "$keys.new"
chmod 600 "$keys.new"
chown "$login:$group" "$keys.new"
mv "$keys.new" "$keys"
echo "authorize-peer: ${line ? `the ${peerSite} stack's deploy key may log in` : "no peer key authorized"}"
`;
}
