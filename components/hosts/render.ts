// First-boot configuration of created hosts (cloud-init user data).

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
 * program ever reaches it; later rule changes arrive through the firewall command.
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
  - [/usr/local/sbin/cutover-firewall]
`;
}
