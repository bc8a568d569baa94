import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

export interface Issued {
    certPem: pulumi.Output<string>;
    /** Secret. */
    keyPem: pulumi.Output<string>;
}

export interface CertSpec {
    commonName: string;
    /** Server certificates name the addresses clients dial (verify-full checks them). */
    ipAddresses?: string[];
    usage: "server" | "client";
}

/**
 * The site's own certificate authority for replication: it signs the server
 * certificates of the site's database and cache hosts and the client certificates of
 * its replication clients. Hosts trust this CA and the peer site's, nothing else.
 */
export class ReplicationCa extends pulumi.ComponentResource {
    public readonly certPem: pulumi.Output<string>;
    private readonly keyPem: pulumi.Output<string>;

    constructor(name: string, args: { site: string }, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:ReplicationCa", name, {}, opts);
        const key = new tls.PrivateKey(`${name}`, { algorithm: "RSA", rsaBits: 2048 }, { parent: this });
        const cert = new tls.SelfSignedCert(`${name}`, {
            privateKeyPem: key.privateKeyPem,
            isCaCertificate: true,
            validityPeriodHours: 10 * 365 * 24,
            allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
            subject: { commonName: `cutover ${args.site} replication CA`, organization: "cutover" },
        }, { parent: this });
        this.certPem = cert.certPem;
        this.keyPem = key.privateKeyPem;
        this.registerOutputs({ certPem: this.certPem });
    }

    /** A key and a certificate signed by this CA; `name` is the resource name prefix. */
    issue(name: string, spec: CertSpec): Issued {
        const key = new tls.PrivateKey(name, { algorithm: "RSA", rsaBits: 2048 }, { parent: this });
        const request = new tls.CertRequest(name, {
            privateKeyPem: key.privateKeyPem,
            subject: { commonName: spec.commonName, organization: "cutover" },
            ipAddresses: spec.ipAddresses,
        }, { parent: this });
        const cert = new tls.LocallySignedCert(name, {
            certRequestPem: request.certRequestPem,
            caPrivateKeyPem: this.keyPem,
            caCertPem: this.certPem,
            validityPeriodHours: 2 * 365 * 24,
            allowedUses: spec.usage === "server" ? ["digital_signature", "key_encipherment", "server_auth"] : ["digital_signature", "key_encipherment", "client_auth"],
        }, { parent: this });
        return { certPem: cert.certPem, keyPem: key.privateKeyPem };
    }
}

/** The trust bundle: this site's CA and, once known, the peer's. */
export function trustBundle(own: pulumi.Input<string>, peer: pulumi.Input<string | undefined>): pulumi.Output<string> {
    return pulumi.all([own, peer]).apply(([o, p]) => [o.trim(), p?.trim()].filter(Boolean).join("\n") + "\n");
}

/** Secrets for a host step's stdin, one section per name (see `readSecrets`). */
export function secretStdin(sections: Record<string, pulumi.Input<string>>): pulumi.Output<string> {
    const names = Object.keys(sections);
    return pulumi.secret(pulumi.all(names.map((n) => sections[n])).apply((values) => values.map((v, i) => `--- cutover:${names[i]}\n${v.trim()}\n`).join("")));
}
