// What builds the lab, as text and argument lists: the network commands and the
// script that is PID 1 of every lab host.
import { LabHost, LabPlan, segmentOf } from "./topology";

/** `ip` invocations (argv) that build the router, the segments and every host's link. */
export function networkCommands(plan: LabPlan): string[][] {
    const r = plan.routerNs;
    const cmds: string[][] = [["ip", "netns", "add", r], ["ip", "-n", r, "link", "set", "lo", "up"]];
    for (const s of plan.segments) {
        cmds.push(
            ["ip", "-n", r, "link", "add", s.bridge, "type", "bridge"],
            ["ip", "-n", r, "addr", "add", `${s.gateway}/24`, "dev", s.bridge],
            ["ip", "-n", r, "link", "set", s.bridge, "up"],
        );
    }
    cmds.push(["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    for (const h of [...plan.hosts, plan.admin, plan.client]) cmds.push(...hostLinkCommands(plan, h));
    return cmds;
}

export function hostLinkCommands(plan: LabPlan, h: LabHost): string[][] {
    const s = segmentOf(plan, h.site);
    const r = plan.routerNs;
    return [
        ["ip", "netns", "add", h.netns],
        ["ip", "link", "add", h.veth, "netns", r, "type", "veth", "peer", "name", "eth0", "netns", h.netns],
        ["ip", "-n", r, "link", "set", h.veth, "master", s.bridge, "up"],
        ["ip", "-n", h.netns, "addr", "add", `${h.address}/24`, "dev", "eth0"],
        ["ip", "-n", h.netns, "link", "set", "eth0", "up"],
        ["ip", "-n", h.netns, "link", "set", "lo", "up"],
        ["ip", "-n", h.netns, "route", "add", "default", "via", s.gateway],
    ];
}

/** iptables rules in the router that cut the link between two segments, both ways (each keeps its other links). */
export function cutRules(plan: LabPlan, a: string, b: string): string[][] {
    const [x, y] = [segmentOf(plan, a).bridge, segmentOf(plan, b).bridge];
    const comment = ["-m", "comment", "--comment", `cutover-lab-cut-${a}-${b}`];
    return [
        ["-i", x, "-o", y, ...comment, "-j", "DROP"],
        ["-i", y, "-o", x, ...comment, "-j", "DROP"],
    ];
}

/**
 * PID 1 of a lab host, run inside its own network, mount, UTS and PID namespaces.
 * /etc, /var, /root and /home become copy-on-write overlays of the machine's own
 * (so installed packages are there, and nothing a host writes leaks out); /run and
 * /tmp are fresh. The overlays' upper layers live on a tmpfs of the host's mount
 * namespace, so they vanish with the host. Then sshd, and a loop that reaps orphans.
 */
/** A lab host's private /etc, /var, /root and /home: overlays of the machine's, upper layers on a tmpfs (needs $name). */
const LAYERS = `mount -t tmpfs -o mode=755,size=16g "lab-layers-$name" /run
for d in etc var root home; do
    mkdir -p "/run/.layers/$d/upper" "/run/.layers/$d/work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=/run/.layers/$d/upper,workdir=/run/.layers/$d/work" "/$d"
done`;

export function hostInitScript(): string {
    return `#!/bin/bash
# Lab host init: $1 = host name, $2 = authorized public key. Rendered by cutover's lab.
set -euo pipefail
name=$1
pubkey=$2
${LAYERS}
# Cover the layers' tmpfs: the overlays keep it alive, the host no longer sees it.
mount -t tmpfs -o mode=755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
mkdir -p /run/sshd /run/lock /var/run
hostname "$name"
echo "$name" > /etc/hostname
printf '127.0.0.1 localhost\\n127.0.1.1 %s\\n' "$name" > /etc/hosts
rm -f /etc/ssh/ssh_host_*
# One host key, ed25519: ssh-keygen -A would also make a 3072-bit RSA key, most of a boot's CPU.
ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
# The machine's own shell setup (pyenv's shims and their lock under /root) has no place
# on a lab host: sshd sessions would source it and contend for that lock.
printf '# lab host: no shell setup\\n' > /root/.bashrc
printf '# lab host: no shell setup\\n' > /root/.profile
mkdir -p -m 700 /root/.ssh
printf '%s\\n' "$pubkey" > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
# A login that is not root, as on Debian's AWS images: admin, with passwordless sudo.
useradd -m -s /bin/bash admin
install -d -m 700 -o admin -g admin /home/admin/.ssh
printf '%s\\n' "$pubkey" > /home/admin/.ssh/authorized_keys
chown admin:admin /home/admin/.ssh/authorized_keys
chmod 600 /home/admin/.ssh/authorized_keys
printf 'admin ALL=(ALL) NOPASSWD:ALL\\n' > /etc/sudoers.d/90-lab-admin
chmod 440 /etc/sudoers.d/90-lab-admin
/usr/sbin/sshd -e -o PidFile=/run/sshd.pid -o "AcceptEnv=*" -o UseDNS=no
echo "lab host $name ready"
while true; do
    sleep 3600 &
    wait $! || true
done
`;
}

export type CloudKind = "digitalocean" | "aws";

/**
 * The cloud's part of a created host's first boot, as cloud-init config: the NoCloud seed
 * stands in for the cloud's metadata service. DigitalOcean logs in as root with the
 * droplet's keys; Debian's AWS images as admin with passwordless sudo, root refused.
 * Only the modules a first boot of the program's user data needs run (no disk resizing or
 * network renaming on a lab host); apt has no sources in the lab, so package_update
 * succeeds offline and the packages asked for are the machine's.
 */
export function cloudConfig(kind: CloudKind): string {
    const login = kind === "aws"
        ? `disable_root: true
system_info:
  distro: debian
  default_user:
    name: admin
    lock_passwd: true
    shell: /bin/bash
    sudo: "ALL=(ALL) NOPASSWD:ALL"
users: [default]`
        : `disable_root: false
users: []`;
    return `# The lab's cloud (${kind}), rendered by cutover's lab.
datasource_list: [NoCloud]
network: {config: disabled}
${login}
# As Debian's cloud images: the host's name resolves (sudo looks it up).
manage_etc_hosts: true
ssh_deletekeys: true
ssh_genkeytypes: [ed25519, rsa]
cloud_init_modules: [write_files, set_hostname, update_hostname, update_etc_hosts, users_groups, ssh]
cloud_config_modules: [runcmd]
cloud_final_modules: [package_update_upgrade_install, scripts_user, final_message]
`;
}

/** The NoCloud meta-data: the instance and the cloud's keys (a droplet's SSH keys, an instance's key pair). */
export function cloudMetaData(instanceId: string, hostname: string, publicKeys: string[]): string {
    return `instance-id: ${instanceId}
local-hostname: ${hostname}
public-keys:
${publicKeys.map((k) => `  - ${JSON.stringify(k.trim())}`).join("\n")}
`;
}

/**
 * PID 1 of a host the program created, booted the way the clouds boot Debian: the host's
 * namespaces and overlays as for any lab host, a fresh image's state (no cloud-init state,
 * no database files, no apt sources), then cloud-init's local and network stages (users,
 * keys, host keys, files), sshd, and cloud-init's config and final stages in the background:
 * the program's first steps meet a host still in its first boot. Arguments: host name and
 * the folder with user-data, meta-data and lab.cfg.
 */
export function cloudHostInitScript(): string {
    return `#!/bin/bash
# Lab cloud host init: $1 = host name, $2 = seed folder. Rendered by cutover's lab.
set -euo pipefail
name=$1
seed=$2
${LAYERS}
# A fresh image: no earlier boot, no database files, no package sources (offline).
rm -rf /var/lib/cloud /var/log/cloud-init.log /var/log/cloud-init-output.log
find /var/lib/mysql /var/lib/postgresql /var/lib/redis -mindepth 1 -delete 2>/dev/null || true
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
rm -f /etc/ssh/ssh_host_* /root/.ssh/authorized_keys
printf '# lab host: no shell setup\\n' > /root/.bashrc
printf '# lab host: no shell setup\\n' > /root/.profile
printf '127.0.0.1 localhost\\n' > /etc/hosts
# The cloud's seed, read before /tmp (where the lab keeps it) is covered.
install -D -m 644 "$seed/lab.cfg" /etc/cloud/cloud.cfg.d/99-lab.cfg
install -D -m 600 "$seed/meta-data" /var/lib/cloud/seed/nocloud/meta-data
install -D -m 600 "$seed/user-data" /var/lib/cloud/seed/nocloud/user-data
mount -t tmpfs -o mode=755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
# The host's own /dev/disk: where the cloud links an attached volume (by-id).
mount -t tmpfs -o mode=755 disk /dev/disk
mkdir -p /dev/disk/by-id /run/sshd /run/lock /var/run
cloud-init init --local
cloud-init init
/usr/sbin/sshd -e -o PidFile=/run/sshd.pid -o "AcceptEnv=*" -o UseDNS=no
echo "lab cloud host $name: sshd up, cloud-init config and final stages running"
( cloud-init modules --mode=config; cloud-init modules --mode=final ) &
while true; do
    sleep 3600 &
    wait $! || true
done
`;
}
