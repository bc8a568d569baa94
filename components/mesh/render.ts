// tinc 1.0 (the protocol Debian and Ubuntu ship) for the cross-site mesh: every file a
// member needs, and the ensure-script that installs them and starts or reloads tincd.
import * as crypto from "crypto";
import { PUT_FILE, installIfMissing, scriptHeader } from "../script";

export const MESH_NET = "cutover";
export const MESH_INTERFACE = "cutover";

/** One member of the mesh, as both stacks publish it in their `mesh` output. No private key. */
export interface MeshHost {
    /** tinc node name (letters, digits, underscore). */
    node: string;
    /** The host's name in its stack. */
    host: string;
    site: string;
    /** Where other members reach its tincd. */
    publicAddress: string;
    port: number;
    /** Its address inside the mesh. */
    meshAddress: string;
    /** PEM public key: PKCS#1 as the site publishes it (SPKI, as @pulumi/tls exports it, is converted). */
    publicKey: string;
}

/** tinc node names allow only [A-Za-z0-9_]. */
export function meshNodeName(host: string): string {
    return host.replace(/[^A-Za-z0-9_]/g, "_");
}

/** tinc 1.0 reads PKCS#1 ("RSA PUBLIC KEY"), the format its own `tincd -K` writes. */
export function pkcs1PublicKey(pem: string): string {
    if (pem.includes("BEGIN RSA PUBLIC KEY")) return pem.trim();
    return crypto.createPublicKey(pem).export({ type: "pkcs1", format: "pem" }).toString().trim();
}

/**
 * Hubs: the first `perSite` members of each site by node name. Every member connects to
 * the hubs only, so connections grow with N, not N²; tinc routes between the rest.
 * Both stacks compute the same hubs from the same member list.
 */
export function meshHubs(members: MeshHost[], perSite: number): string[] {
    const sites = [...new Set(members.map((m) => m.site))].sort();
    return sites.flatMap((s) => siteHubs(members.filter((m) => m.site === s).map((m) => m.node), perSite));
}

/** One site's hubs among its members' node names. */
export function siteHubs(nodes: string[], perSite: number): string[] {
    return [...nodes].sort().slice(0, perSite);
}

export function tincConf(self: MeshHost, connectTo: string[]): string {
    return `# tinc.conf for ${self.host}, rendered by cutover.
Name = ${self.node}
Mode = router
AddressFamily = ipv4
Interface = ${MESH_INTERFACE}
Port = ${self.port}
PingInterval = 10
PingTimeout = 5
# Reconnect within 10 s, not the default exponential backoff up to 900 s: a member that
# starts before the others know it, or a hub back from a restart, rejoins quickly.
MaxTimeout = 10
${connectTo.filter((n) => n !== self.node).map((n) => `ConnectTo = ${n}`).join("\n")}
`;
}

export function tincHostFile(m: MeshHost): string {
    // tinc 1.0 defaults to Blowfish-CBC and SHA1: AES and SHA-256 are stronger, and faster
    // where the CPU has AES instructions (measured with npm run bench:mesh).
    return `# ${m.host} (site ${m.site}), rendered by cutover.
Address = ${m.publicAddress}
Port = ${m.port}
Subnet = ${m.meshAddress}/32
Cipher = aes-256-cbc
Digest = sha256
${pkcs1PublicKey(m.publicKey)}
`;
}

export function tincUp(self: MeshHost, meshCidr: string): string {
    return `#!/bin/sh
# Brings the mesh interface up with ${self.host}'s mesh address; tinc routes ${meshCidr}.
ip link set "$INTERFACE" up
ip addr replace ${self.meshAddress}/32 dev "$INTERFACE"
ip route replace ${meshCidr} dev "$INTERFACE"
`;
}

export function tincDown(self: MeshHost, meshCidr: string): string {
    return `#!/bin/sh
ip route del ${meshCidr} dev "$INTERFACE" 2>/dev/null || true
ip addr del ${self.meshAddress}/32 dev "$INTERFACE" 2>/dev/null || true
ip link set "$INTERFACE" down
`;
}

export function tincUnit(): string {
    return `[Unit]
Description=cutover tinc mesh
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=/usr/sbin/tincd -n ${MESH_NET} -D
ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
`;
}

function heredoc(path: string, content: string, mode: string): string {
    const tag = `CUTOVER_${crypto.createHash("sha256").update(path).digest("hex").slice(0, 8).toUpperCase()}`;
    return `put ${path} ${mode} root:root config <<'${tag}'
${content.trimEnd()}
${tag}`;
}

/**
 * The host files a member needs: tinc 1.0 authenticates only its own connections, so a
 * member needs its own file and the hubs' it connects to; a hub, which every member connects
 * to, needs all of them. Traffic to anyone else is routed, its session keys exchanged over
 * those connections. So the text sent to a site grows with its hosts, not their square.
 */
export function hostFilesFor(self: MeshHost, members: MeshHost[], hubs: string[]): MeshHost[] {
    const needed = hubs.includes(self.node) ? members : members.filter((m) => m.node === self.node || hubs.includes(m.node));
    return [...needed].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
}

/**
 * Ensure-script for one member: reads its private key from stdin (a secret never written
 * into the script), writes its files, and starts tincd, or sends it SIGHUP when a file
 * changed (a reload keeps the daemon and its unaffected connections). Prints
 * "mesh: unchanged" when nothing changed.
 */
export function meshScript(self: MeshHost, allMembers: MeshHost[], hubs: string[], meshCidr: string): string {
    const dir = `/etc/tinc/${MESH_NET}`;
    const members = hostFilesFor(self, allMembers, hubs);
    const files = [
        heredoc(`${dir}/tinc.conf`, tincConf(self, hubs), "644"),
        heredoc(`${dir}/tinc-up`, tincUp(self, meshCidr), "755"),
        heredoc(`${dir}/tinc-down`, tincDown(self, meshCidr), "755"),
        ...members.map((m) => heredoc(`${dir}/hosts/${m.node}`, tincHostFile(m), "644")),
        heredoc(`/etc/systemd/system/cutover-mesh.service`, tincUnit(), "644"),
    ];
    const wanted = members.map((m) => m.node).sort();
    return `${scriptHeader("mesh", self.host, `tinc mesh member ${self.host} (${self.meshAddress}). The private key arrives on stdin`)}
${installIfMissing("tincd", "tinc")}
mkdir -p ${dir}/hosts

${PUT_FILE}

key=$(cat)
case "$key" in *"PRIVATE KEY"*) ;; *) fail "no private key on stdin" ;; esac
printf '%s\\n' "$key" | put ${dir}/rsa_key.priv 600 root:root config

${files.join("\n\n")}

# Host files it no longer needs (members that left, a hub that is one no more).
wanted=" ${wanted.join(" ")} "
for f in ${dir}/hosts/*; do
    case "$wanted" in *" $(basename "$f") "*) ;; *) rm -f "$f"; changed=1 ;; esac
done

pidfile=/run/tinc.${MESH_NET}.pid
running() { [ -f "$pidfile" ] && kill -0 "$(head -n1 "$pidfile" | cut -d' ' -f1)" 2>/dev/null; }
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if ! systemctl is-active --quiet cutover-mesh; then
        systemctl enable --now cutover-mesh >/dev/null 2>&1 || fail "systemctl start cutover-mesh failed: $(journalctl -u cutover-mesh -n 5 --no-pager 2>&1)"
        changed=1
    elif [ "$changed" = 1 ]; then
        systemctl reload cutover-mesh
        systemctl kill -s ALRM cutover-mesh
    fi
elif ! running; then
    tincd -n ${MESH_NET} --pidfile="$pidfile" --logfile=/var/log/tinc.${MESH_NET}.log || fail "tincd did not start: $(tail -n 5 /var/log/tinc.${MESH_NET}.log 2>/dev/null)"
    changed=1
elif [ "$changed" = 1 ]; then
    # HUP rereads the files (the daemon and unaffected connections stay); ALRM retries now.
    kill -HUP "$(head -n1 "$pidfile" | cut -d' ' -f1)"
    sleep 0.2
    kill -ALRM "$(head -n1 "$pidfile" | cut -d' ' -f1)"
fi
if [ "$changed" = 1 ]; then echo "mesh: changed"; else echo "mesh: unchanged"; fi
`;
}
