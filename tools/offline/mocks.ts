// Cloud mocks for offline evaluation: DigitalOcean, AWS, Cloudflare, TLS and random return
// what the real providers would (an address inside the VPC, an ARN, a key), never an echo.
// Host-side resources (command:*) get empty stdout here; the lab runs them for real.
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { hostAddress, parseCidr } from "../../components/cidr";
import * as fs from "fs";
import * as path from "path";
import { CommandExecutor, LabExecution } from "../../lab/executor";
import { CloudLab, attachVolume, bootCloudHost, scaleGroup } from "../../lab/cloud";
import { certRequest, locallySignedCert, selfSignedCert } from "./certs";
import { unwrapSecrets } from "./secrets";


export interface MockOptions {
    /** true: computed values are unknown, as in `pulumi preview`. */
    preview: boolean;
    /** Outputs of the peer stack, served to pulumi.StackReference. */
    peerOutputs?: Record<string, unknown>;
    /** Names of peer outputs that are secrets. */
    peerSecretOutputNames?: string[];
    /** Run command resources for real on lab hosts instead of answering with empty output. */
    lab?: LabExecution;
    /** Keep keys, certificates and passwords in this folder across evaluations, as state would (the lab's folder in lab mode). */
    keepIn?: string;
    /** The AMI the image lookup answers (Debian publishes new ones; tests answer a newer one). */
    newestDebianAmi?: string;
}

/**
 * Resources whose outputs are created once and then kept in Pulumi state (keys, passwords,
 * certificates; a launch template, whose version number grows when it changes). The lab keeps
 * them across runs as the state would; otherwise every run would mint new keys that the other
 * site does not know yet.
 */
const STATEFUL = new Set(["tls:index/privateKey:PrivateKey", "tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert", "tls:index/certRequest:CertRequest", "random:index/randomPassword:RandomPassword", "aws:ec2/launchTemplate:LaunchTemplate"]);

const UNKNOWN = pulumi.runtime.unknownValue;

function digest(...parts: string[]): string {
    return crypto.createHash("sha256").update(parts.join("\u0000")).digest("hex");
}

/** An SSH wire string: uint32 length, then the bytes. */
function sshString(b: Buffer): Buffer {
    const n = Buffer.alloc(4);
    n.writeUInt32BE(b.length);
    return Buffer.concat([n, b]);
}

export function opensshPublicKey(raw: Buffer, comment: string): string {
    return `ssh-ed25519 ${Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(raw)]).toString("base64")} ${comment}`;
}

/** An Ed25519 private key in OpenSSH's own format (openssh-key-v1, unencrypted), as the tls provider's privateKeyOpenssh: ssh loads no PKCS#8 Ed25519 key. */
export function opensshPrivateKey(seed: Buffer, pub: Buffer): string {
    const type = sshString(Buffer.from("ssh-ed25519"));
    const check = crypto.randomBytes(4);
    let body = Buffer.concat([check, check, type, sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(Buffer.alloc(0))]);
    const pad = Buffer.from(Array.from({ length: (8 - (body.length % 8)) % 8 }, (_, i) => i + 1));
    body = Buffer.concat([body, pad]);
    const none = sshString(Buffer.from("none"));
    const one = Buffer.alloc(4);
    one.writeUInt32BE(1);
    const blob = Buffer.concat([Buffer.from("openssh-key-v1\0"), none, none, sshString(Buffer.alloc(0)), one, sshString(Buffer.concat([type, sshString(pub)])), sshString(body)]);
    const lines = blob.toString("base64").match(/.{1,70}/g)!.join("\n");
    return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** A value a provider returns as a secret. Becomes pulumi.secret on the way to the SDK. */
class Secret {
    constructor(readonly secret: unknown) {}
}

type State = Record<string, unknown>;

function toSdk(state: State): State {
    return Object.fromEntries(Object.entries(state).map(([k, v]) => [k, v instanceof Secret ? pulumi.secret(v.secret) : v]));
}

// Stored as {secret: value} in the lab's 0600 state file, revived as Secret.
function revive(state: State): State {
    return Object.fromEntries(Object.entries(state).map(([k, v]) => [k, v && typeof v === "object" && "secret" in (v as object) ? new Secret((v as Secret).secret) : v]));
}

export class CloudMocks implements pulumi.runtime.Mocks {
    private readonly rangeById = new Map<string, string>();
    private readonly usedHostOffsets = new Map<string, Set<number>>();
    private readonly usedPublic = new Set<string>();
    private readonly executor?: CommandExecutor;
    private readonly kept: Record<string, { inputs: string; result: { id: string; state: State } }> = {};
    private readonly keptFile?: string;
    /** Lab only: created hosts become lab hosts. */
    private readonly cloud?: CloudLab;
    /** The cloud's public keys by DigitalOcean fingerprint or EC2 key pair name; droplet names and volumes by id. */
    private readonly cloudKeys = new Map<string, string>();
    /** Launch templates by id: what their instances boot from (the user data, base64, and the key pair). */
    private readonly templates = new Map<string, { userData: string; keyName: string }>();
    private readonly dropletNames = new Map<string, string>();
    private readonly volumes = new Map<string, { name: string; size: number }>();

    constructor(private readonly options: MockOptions, private readonly stack: string) {
        if (options.lab) this.executor = new CommandExecutor(options.lab);
        if (options.lab?.cloud) this.cloud = { dir: options.lab.dir, slots: options.lab.cloud };
        const keepIn = options.lab?.dir ?? options.keepIn;
        if (keepIn) {
            this.keptFile = path.join(keepIn, `resources-${stack}.json`);
            if (fs.existsSync(this.keptFile)) Object.assign(this.kept, JSON.parse(fs.readFileSync(this.keptFile, "utf8")));
        }
    }

    /** The outputs a stateful resource got on an earlier run with the same inputs (lab, or `keepIn`). */
    private keep(args: pulumi.runtime.MockResourceArgs, make: () => { id: string; state: State }): { id: string; state: State } {
        if (!this.keptFile || !STATEFUL.has(args.type)) {
            const r = make();
            return { id: r.id, state: toSdk(r.state) };
        }
        const key = `${args.type}::${args.name}`;
        const inputs = digest(JSON.stringify(args.inputs));
        const prev = this.kept[key];
        if (prev && prev.inputs === inputs) return { id: prev.result.id, state: toSdk(revive(prev.result.state)) };
        const result = make();
        this.kept[key] = { inputs, result };
        fs.writeFileSync(this.keptFile, JSON.stringify(this.kept), { mode: 0o600 });
        return { id: result.id, state: toSdk(result.state) };
    }

    /**
     * An RSA key pair. With CUTOVER_MOCK_KEYS (a folder: the offline runner sets one, see
     * mockKeyCache) the pair of a stack's resource is generated once and reused by later
     * evaluations, as state would keep it.
     */
    private rsaKeyPair(name: string, bits: number): { publicKey: crypto.KeyObject; privateKey: crypto.KeyObject } {
        const dir = process.env.CUTOVER_MOCK_KEYS;
        const file = dir ? path.join(dir, `${digest(this.stack, name, String(bits))}.pem`) : undefined;
        if (file && fs.existsSync(file)) {
            const privateKey = crypto.createPrivateKey(fs.readFileSync(file, "utf8"));
            return { privateKey, publicKey: crypto.createPublicKey(privateKey) };
        }
        const pair = crypto.generateKeyPairSync("rsa", { modulusLength: bits });
        if (file) {
            // Written whole, then renamed: a concurrent evaluation never reads half a key.
            const tmp = `${file}.${process.pid}`;
            fs.writeFileSync(tmp, pair.privateKey.export({ format: "pem", type: "pkcs1" }), { mode: 0o600 });
            fs.renameSync(tmp, file);
        }
        return pair;
    }

    /** Lab only: delete the commands the program no longer declares. */
    async finish(): Promise<void> {
        await this.executor?.finish();
    }

    /** Lab only, after a failure: the steps still running finish and are recorded. */
    async settle(): Promise<void> {
        await this.executor?.settle();
    }

    /** A value known only after apply: unknown in preview, `value` otherwise. */
    private computed<T>(value: T): T | string {
        return this.options.preview ? UNKNOWN : value;
    }

    // Private addresses are handed out inside the range the host was placed in, deterministically.
    private privateAddress(rangeId: string, name: string): string {
        const range = parseCidr(this.rangeById.get(rangeId) ?? "10.0.0.0/16")!;
        const used = this.usedHostOffsets.get(rangeId) ?? new Set<number>();
        // Skip the first 4 and the last address (network, gateway/reserved, broadcast).
        const room = Math.min(2 ** (32 - range.prefix) - 5, 4000);
        let offset = 4 + (parseInt(digest(name).slice(0, 6), 16) % room);
        while (used.has(offset)) offset = 4 + ((offset - 3) % room);
        used.add(offset);
        this.usedHostOffsets.set(rangeId, used);
        return hostAddress(range, offset);
    }

    // Public addresses come from documentation ranges (DigitalOcean 198.51.100.0/24, AWS
    // 192.0.2.0/24), derived from the resource name so the two stacks do not collide.
    // Past the 224 a documentation /24 holds (a large pool), addresses come from 240.0.0.0/4,
    // reserved and never routed, so a plan cannot be mistaken for a real address either.
    private publicAddress(prefix: string, name: string): string {
        const free = (a: string) => !this.usedPublic.has(a);
        let n = 16 + (parseInt(digest(name).slice(0, 6), 16) % 224);
        for (let tries = 0; tries < 224 && !free(`${prefix}.${n}`); tries++) n = 16 + ((n - 15) % 224);
        let address = `${prefix}.${n}`;
        for (let k = parseInt(digest(name).slice(0, 6), 16); !free(address); k++) address = `240.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
        this.usedPublic.add(address);
        return address;
    }

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } | Promise<{ id: string; state: Record<string, unknown> }> {
        const inputs = args.inputs as Record<string, any>;
        if (this.executor && (args.type === "command:remote:Command" || args.type === "command:local:Command")) {
            return this.executor.run(args.type, args.name, inputs).then((out) => ({ id: `${args.name}-${digest(args.type, args.name).slice(0, 8)}`, state: { ...inputs, ...out } }));
        }
        if (this.cloud && args.type === "digitalocean:index/volumeAttachment:VolumeAttachment") {
            const volume = this.volumes.get(String(inputs.volumeId));
            const droplet = this.dropletNames.get(String(inputs.dropletId));
            if (!volume || !droplet) throw new Error(`lab cloud: volume attachment ${args.name} names an unknown volume or droplet`);
            return attachVolume(this.cloud, droplet, volume.name, volume.size).then(() => this.keep(args, () => this.create(args)));
        }
        if (this.cloud && args.type === "aws:autoscaling/group:Group") return this.scale(args);
        const made = this.keep(args, () => this.create(args));
        if (args.type === "aws:ec2/launchTemplate:LaunchTemplate") this.templates.set(made.id, { userData: String(inputs.userData ?? ""), keyName: String(inputs.keyName ?? "") });
        return made;
    }

    /** Lab only: an auto-scaling group's instances become lab hosts booted from its launch template (lab/cloud.ts). */
    private async scale(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, unknown> }> {
        const inputs = args.inputs as Record<string, any>;
        const template = this.templates.get(String(inputs.launchTemplate?.id));
        if (!template) throw new Error(`lab cloud: auto-scaling group ${args.name} names an unknown launch template ${JSON.stringify(inputs.launchTemplate?.id)}`);
        const key = this.cloudKeys.get(template.keyName);
        await scaleGroup(this.cloud!, {
            name: String(inputs.name),
            desired: Number(inputs.desiredCapacity),
            version: String(inputs.launchTemplate.version),
            userData: Buffer.from(template.userData, "base64").toString("utf8"),
            publicKeys: key ? [key] : [],
        });
        return this.keep(args, () => this.create(args));
    }

    private create(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        const inputs = args.inputs as Record<string, any>;
        const h = digest(args.type, args.name);
        const state: Record<string, unknown> = { ...inputs };
        let id = `${args.name}-${h.slice(0, 8)}`;
        switch (args.type) {
            case "pulumi:pulumi:StackReference": {
                return {
                    id: inputs.name,
                    state: { name: inputs.name, outputs: this.options.peerOutputs ?? {}, secretOutputNames: this.options.peerSecretOutputNames ?? [] },
                };
            }
            case "digitalocean:index/vpc:Vpc":
                id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
                this.rangeById.set(id, inputs.ipRange);
                Object.assign(state, { urn: `do:vpc:${id}`, default: false, createdAt: "2026-11-22T00:00:00Z" });
                break;
            case "digitalocean:index/tag:Tag":
                id = inputs.name;
                break;
            case "digitalocean:index/sshKey:SshKey": {
                const blob = Buffer.from(String(inputs.publicKey ?? "").split(" ")[1] ?? "", "base64");
                id = String(parseInt(h.slice(0, 7), 16));
                state.fingerprint = crypto.createHash("md5").update(blob).digest("hex").match(/../g)!.join(":");
                this.cloudKeys.set(String(state.fingerprint), String(inputs.publicKey));
                break;
            }
            case "digitalocean:index/droplet:Droplet":
                id = String(300000000 + (parseInt(h.slice(0, 6), 16) % 99999999));
                Object.assign(state, {
                    urn: `do:droplet:${id}`,
                    status: "active",
                    ipv4Address: this.computed(this.publicAddress("198.51.100", args.name)),
                    ipv4AddressPrivate: this.computed(this.privateAddress(inputs.vpcUuid, args.name)),
                    ipv6Address: this.computed(`2001:db8:1::${h.slice(0, 4)}`),
                });
                if (this.cloud) {
                    // The droplet boots as a lab host: root logs in with the droplet's keys.
                    const keys = ((inputs.sshKeys ?? []) as string[]).map((f) => this.cloudKeys.get(String(f)) ?? "").filter(Boolean);
                    const slot = bootCloudHost(this.cloud, String(inputs.name), "digitalocean", String(inputs.userData ?? ""), keys);
                    Object.assign(state, { ipv4Address: slot.address, ipv4AddressPrivate: slot.address });
                    this.dropletNames.set(id, String(inputs.name));
                }
                break;
            case "digitalocean:index/volume:Volume":
                id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
                this.volumes.set(id, { name: String(inputs.name), size: Number(inputs.size) });
                break;
            case "digitalocean:index/firewall:Firewall":
                id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
                // Droplets the firewall names by id stay named (the provider echoes them).
                Object.assign(state, { status: "succeeded", dropletIds: inputs.dropletIds ?? [] });
                break;
            case "aws:ec2/vpc:Vpc":
                id = `vpc-${h.slice(0, 17)}`;
                this.rangeById.set(id, inputs.cidrBlock);
                state.arn = `arn:aws:ec2:eu-west-1:123456789012:vpc/${id}`;
                break;
            case "aws:ec2/subnet:Subnet":
                id = `subnet-${h.slice(0, 17)}`;
                this.rangeById.set(id, inputs.cidrBlock);
                state.arn = `arn:aws:ec2:eu-west-1:123456789012:subnet/${id}`;
                break;
            case "aws:ec2/internetGateway:InternetGateway":
                id = `igw-${h.slice(0, 17)}`;
                break;
            case "aws:ec2/routeTable:RouteTable":
                id = `rtb-${h.slice(0, 17)}`;
                break;
            case "aws:ec2/routeTableAssociation:RouteTableAssociation":
                id = `rtbassoc-${h.slice(0, 17)}`;
                break;
            case "aws:ec2/securityGroup:SecurityGroup":
                id = `sg-${h.slice(0, 17)}`;
                state.arn = `arn:aws:ec2:eu-west-1:123456789012:security-group/${id}`;
                break;
            case "aws:ec2/keyPair:KeyPair":
                id = inputs.keyName;
                this.cloudKeys.set(String(inputs.keyName), String(inputs.publicKey));
                state.fingerprint = crypto.createHash("sha256").update(String(inputs.publicKey)).digest("base64");
                break;
            case "aws:ec2/instance:Instance":
                id = `i-${h.slice(0, 17)}`;
                Object.assign(state, {
                    arn: `arn:aws:ec2:eu-west-1:123456789012:instance/${id}`,
                    instanceState: "running",
                    publicIp: this.computed(this.publicAddress("192.0.2", args.name)),
                    privateIp: this.computed(this.privateAddress(inputs.subnetId, args.name)),
                });
                if (this.cloud) {
                    // The instance boots as a lab host: admin logs in with the key pair's key.
                    const key = this.cloudKeys.get(String(inputs.keyName));
                    const slot = bootCloudHost(this.cloud, String(inputs.tags?.Name), "aws", String(inputs.userData ?? ""), key ? [key] : []);
                    Object.assign(state, { publicIp: slot.address, privateIp: slot.address });
                }
                break;
            case "aws:ec2/launchTemplate:LaunchTemplate": {
                id = `lt-${h.slice(0, 17)}`;
                // A changed template is a new version of the same template (kept in the lab and with keepIn).
                const before = this.kept[`${args.type}::${args.name}`]?.result.state.latestVersion;
                Object.assign(state, { latestVersion: typeof before === "number" ? before + 1 : 1, arn: `arn:aws:ec2:eu-west-1:123456789012:launch-template/${id}` });
                break;
            }
            case "aws:lb/loadBalancer:LoadBalancer":
                id = `arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/${inputs.name}/${h.slice(0, 16)}`;
                Object.assign(state, { arn: id, dnsName: this.computed(`${inputs.name}-${parseInt(h.slice(0, 8), 16)}.eu-west-1.elb.amazonaws.com`), zoneId: "Z32O12XQLNTSW2" });
                break;
            case "aws:lb/targetGroup:TargetGroup":
                id = `arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/${inputs.name}/${h.slice(0, 16)}`;
                state.arn = id;
                break;
            case "aws:lb/listener:Listener":
                id = `arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/${h.slice(0, 16)}`;
                state.arn = id;
                break;
            case "aws:acm/certificate:Certificate":
                id = `arn:aws:acm:eu-west-1:123456789012:certificate/${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
                // ACM gives the apex and its wildcard the same validation record.
                Object.assign(state, {
                    arn: id,
                    domainValidationOptions: this.computed([inputs.domainName, ...(inputs.subjectAlternativeNames ?? [])].map((domainName: string) => ({
                        domainName,
                        resourceRecordName: `_${h.slice(0, 32)}.${String(inputs.domainName)}.`,
                        resourceRecordType: "CNAME",
                        resourceRecordValue: `_${h.slice(32, 64)}.acm-validations.aws.`,
                    }))),
                });
                break;
            case "aws:acm/certificateValidation:CertificateValidation":
                id = String(inputs.certificateArn);
                break;
            case "aws:autoscaling/group:Group":
                id = inputs.name;
                state.arn = `arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:${h.slice(0, 8)}:autoScalingGroupName/${inputs.name}`;
                break;
            case "aws:s3/bucket:Bucket":
                // The provider names a bucket from its prefix and a unique suffix.
                id = `${inputs.bucketPrefix ?? inputs.bucket ?? "bucket-"}${h.slice(0, 12)}`;
                Object.assign(state, { bucket: id, arn: `arn:aws:s3:::${id}`, region: "eu-west-1" });
                break;
            case "aws:iam/user:User":
                id = inputs.name;
                state.arn = `arn:aws:iam::123456789012:user/${inputs.name}`;
                break;
            case "aws:iam/accessKey:AccessKey":
                id = `AKIA${h.slice(0, 16).toUpperCase()}`;
                state.secret = new Secret(crypto.randomBytes(30).toString("base64"));
                break;
            case "aws:sns/topic:Topic":
                id = `arn:aws:sns:eu-west-1:123456789012:${inputs.name}`;
                state.arn = id;
                break;
            case "tls:index/privateKey:PrivateKey": {
                // A real key pair in the provider's formats (RSA private keys PKCS#1, public
                // keys SPKI), so the lab's daemons can use them; private halves come back as
                // secrets, as the tls provider returns them.
                const rsa = inputs.algorithm === "RSA";
                const { publicKey, privateKey } = rsa ? this.rsaKeyPair(args.name, inputs.rsaBits ?? 2048) : crypto.generateKeyPairSync("ed25519");
                const privatePem = privateKey.export({ format: "pem", type: rsa ? "pkcs1" : "pkcs8" }).toString();
                const raw = rsa ? undefined : (publicKey.export({ format: "der", type: "spki" }) as Buffer).subarray(-32);
                Object.assign(state, {
                    publicKeyOpenssh: raw ? opensshPublicKey(raw, "") : "",
                    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }),
                    privateKeyPem: new Secret(privatePem),
                    privateKeyPemPkcs8: new Secret(privateKey.export({ format: "pem", type: "pkcs8" }).toString()),
                    privateKeyOpenssh: new Secret(raw ? opensshPrivateKey((privateKey.export({ format: "der", type: "pkcs8" }) as Buffer).subarray(-32), raw) : privatePem),
                    publicKeyFingerprintMd5: crypto.createHash("md5").update(publicKey.export({ format: "der", type: "spki" })).digest("hex"),
                });
                id = h.slice(0, 40);
                break;
            }
            case "tls:index/selfSignedCert:SelfSignedCert":
                state.certPem = selfSignedCert({ ...inputs, privateKeyPem: unwrapSecrets(inputs.privateKeyPem) } as Parameters<typeof selfSignedCert>[0]);
                id = h.slice(0, 40);
                break;
            case "tls:index/certRequest:CertRequest":
                state.certRequestPem = certRequest({ ...inputs, privateKeyPem: unwrapSecrets(inputs.privateKeyPem) } as Parameters<typeof certRequest>[0]);
                id = h.slice(0, 40);
                break;
            case "tls:index/locallySignedCert:LocallySignedCert":
                state.certPem = locallySignedCert({ ...inputs, caPrivateKeyPem: unwrapSecrets(inputs.caPrivateKeyPem) } as Parameters<typeof locallySignedCert>[0]);
                id = h.slice(0, 40);
                break;
            case "random:index/randomPassword:RandomPassword": {
                // Letters and digits only: the value goes into SQL and config files.
                const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
                state.result = new Secret(Array.from(crypto.randomBytes(inputs.length ?? 32), (b) => alphabet[b % alphabet.length]).join(""));
                id = "none";
                break;
            }
            case "command:remote:Command":
            case "command:local:Command":
                Object.assign(state, { stdout: this.computed(""), stderr: this.computed("") });
                break;
        }
        // In a preview the ids of resources to be created are unknown; an empty id tells the SDK so.
        return { id: this.options.preview ? "" : id, state };
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        const inputs = args.inputs as Record<string, any>;
        switch (args.token) {
            case "pulumi:pulumi:readStackOutputs":
                // The engine's own read of a stack's outputs: the peer exists offline.
                return { name: inputs.name, outputs: this.options.peerOutputs ?? {}, secretOutputNames: this.options.peerSecretOutputNames ?? [] };
            case "aws:index/getAvailabilityZones:getAvailabilityZones":
                return { names: ["eu-west-1a", "eu-west-1b", "eu-west-1c"], zoneIds: ["euw1-az1", "euw1-az2", "euw1-az3"], id: "eu-west-1" };
            case "aws:ec2/getAmi:getAmi":
                return { id: this.options.newestDebianAmi ?? "ami-0a1b2c3d4e5f60718", name: "debian-12-amd64-20261101-1920", architecture: "x86_64", ownerId: inputs.owners?.[0] ?? "" };
            default:
                throw new Error(`offline mocks: no answer for invoke ${args.token}; add one to tools/offline/mocks.ts`);
        }
    }
}
