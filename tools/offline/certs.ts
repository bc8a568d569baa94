// Real X.509 for the tls provider's certificate resources, made with the openssl CLI, so
// the lab's daemons verify real chains. Plain data in, PEM out.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

interface Subject {
    commonName?: string;
    organization?: string;
}

function withDir<T>(f: (dir: string) => T): T {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cutover-certs-"));
    try {
        return f(dir);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function subj(s: Subject | undefined): string {
    return `/CN=${s?.commonName ?? "cutover"}${s?.organization ? `/O=${s.organization}` : ""}`;
}

function usageExtensions(uses: string[], isCa: boolean): string {
    const ku = uses.filter((u) => ["digital_signature", "key_encipherment", "cert_signing", "crl_signing"].includes(u)).map((u) => ({ digital_signature: "digitalSignature", key_encipherment: "keyEncipherment", cert_signing: "keyCertSign", crl_signing: "cRLSign" })[u]!);
    const eku = uses.filter((u) => u === "server_auth" || u === "client_auth").map((u) => (u === "server_auth" ? "serverAuth" : "clientAuth"));
    return [
        `basicConstraints=critical,CA:${isCa ? "TRUE" : "FALSE"}`,
        ku.length ? `keyUsage=critical,${ku.join(",")}` : "",
        eku.length ? `extendedKeyUsage=${eku.join(",")}` : "",
        "subjectKeyIdentifier=hash",
    ].filter(Boolean).join("\n");
}

function addext(lines: string): string[] {
    return lines.split("\n").flatMap((l) => ["-addext", l]);
}

export function selfSignedCert(i: { privateKeyPem: string; subject?: Subject; validityPeriodHours: number; isCaCertificate?: boolean; allowedUses: string[] }): string {
    return withDir((d) => {
        fs.writeFileSync(path.join(d, "key.pem"), i.privateKeyPem, { mode: 0o600 });
        const days = String(Math.max(1, Math.ceil(i.validityPeriodHours / 24)));
        execFileSync("openssl", ["req", "-x509", "-new", "-key", path.join(d, "key.pem"), "-subj", subj(i.subject), "-days", days, "-sha256", "-config", "/dev/null", ...addext(usageExtensions(i.allowedUses, i.isCaCertificate ?? false)), "-out", path.join(d, "cert.pem")], { stdio: "pipe" });
        return fs.readFileSync(path.join(d, "cert.pem"), "utf8");
    });
}

export function certRequest(i: { privateKeyPem: string; subject?: Subject; ipAddresses?: string[]; dnsNames?: string[] }): string {
    return withDir((d) => {
        fs.writeFileSync(path.join(d, "key.pem"), i.privateKeyPem, { mode: 0o600 });
        const san = [...(i.ipAddresses ?? []).map((a) => `IP:${a}`), ...(i.dnsNames ?? []).map((n) => `DNS:${n}`)];
        execFileSync("openssl", ["req", "-new", "-key", path.join(d, "key.pem"), "-subj", subj(i.subject), "-config", "/dev/null", ...(san.length ? ["-addext", `subjectAltName=${san.join(",")}`] : []), "-out", path.join(d, "req.pem")], { stdio: "pipe" });
        return fs.readFileSync(path.join(d, "req.pem"), "utf8");
    });
}

export function locallySignedCert(i: { certRequestPem: string; caPrivateKeyPem: string; caCertPem: string; validityPeriodHours: number; allowedUses: string[]; isCaCertificate?: boolean }): string {
    return withDir((d) => {
        fs.writeFileSync(path.join(d, "req.pem"), i.certRequestPem);
        fs.writeFileSync(path.join(d, "ca.key"), i.caPrivateKeyPem, { mode: 0o600 });
        fs.writeFileSync(path.join(d, "ca.pem"), i.caCertPem);
        fs.writeFileSync(path.join(d, "ext.cnf"), usageExtensions(i.allowedUses, i.isCaCertificate ?? false));
        const days = String(Math.max(1, Math.ceil(i.validityPeriodHours / 24)));
        execFileSync("openssl", ["x509", "-req", "-in", path.join(d, "req.pem"), "-CA", path.join(d, "ca.pem"), "-CAkey", path.join(d, "ca.key"), "-CAcreateserial", "-copy_extensions", "copy", "-days", days, "-sha256", "-extfile", path.join(d, "ext.cnf"), "-out", path.join(d, "cert.pem")], { stdio: "pipe" });
        return fs.readFileSync(path.join(d, "cert.pem"), "utf8");
    });
}
