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
export function hostInitScript(): string {
    return `#!/bin/bash
# Lab host init: $1 = host name, $2 = authorized public key. Rendered by cutover's lab.
set -euo pipefail
name=$1
pubkey=$2
mount -t tmpfs -o mode=755,size=16g "lab-layers-$name" /run
for d in etc var root home; do
    mkdir -p "/run/.layers/$d/upper" "/run/.layers/$d/work"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=/run/.layers/$d/upper,workdir=/run/.layers/$d/work" "/$d"
done
# Cover the layers' tmpfs: the overlays keep it alive, the host no longer sees it.
mount -t tmpfs -o mode=755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
mkdir -p /run/sshd /run/lock /var/run
hostname "$name"
echo "$name" > /etc/hostname
printf '127.0.0.1 localhost\\n127.0.1.1 %s\\n' "$name" > /etc/hosts
rm -f /etc/ssh/ssh_host_*
ssh-keygen -A -q
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
