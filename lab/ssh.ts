// The ssh command line the lab uses, from the operator's namespace (inside adminCidrs),
// the way the command provider connects from the machine running `pulumi up`.

export interface SshTarget {
    host: string;
    port?: number;
    user?: string;
    keyPath: string;
    /** Environment variable names to pass (the host's sshd must AcceptEnv them). */
    sendEnv?: string[];
    /** How often the executor dials a host that does not answer yet (the connection's dialErrorLimit). */
    dialErrorLimit?: number;
    /** Jump host, as the command provider's `proxy` connection. */
    proxy?: { host: string; port?: number; user?: string; keyPath: string };
}

const COMMON = [
    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
];

export function sshArgv(operatorNetns: string, t: SshTarget): string[] {
    const jump = t.proxy
        ? ["-o", `ProxyCommand=ssh -i ${t.proxy.keyPath} -p ${t.proxy.port ?? 22} ${COMMON.join(" ")} -W %h:%p ${t.proxy.user ?? "root"}@${t.proxy.host}`]
        : [];
    return [
        "ip", "netns", "exec", operatorNetns,
        "ssh", "-i", t.keyPath, "-p", String(t.port ?? 22), ...COMMON, ...jump,
        ...(t.sendEnv ?? []).flatMap((e) => ["-o", `SendEnv=${e}`]),
        `${t.user ?? "root"}@${t.host}`,
    ];
}
