// A private S3 bucket the stack owns (backups, migrated media) and the one IAM key a host
// job uses with it: encrypted, versioned, public access blocked, ACLs disabled, lifecycle.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export interface PrivateBucketArgs {
    site: string;
    purpose: "backup" | "media";
    /** Objects (and older versions) expire after this many days; unset: kept. */
    expireDays?: number;
    /** What the host's key may do: backups may add and read but never delete (versioning keeps what is overwritten). */
    access: "no-delete" | "read-write";
}

export class PrivateBucket extends pulumi.ComponentResource {
    public readonly bucket: pulumi.Output<string>;
    public readonly region: pulumi.Output<string>;
    /** The host job's key (secret). */
    public readonly accessKeyId: pulumi.Output<string>;
    public readonly secretAccessKey: pulumi.Output<string>;

    constructor(name: string, args: PrivateBucketArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:PrivateBucket", name, {}, opts);
        const child = { parent: this };
        const tags = { site: args.site, purpose: args.purpose };
        // Backups and migrated media outlive any `pulumi destroy`: deleting them is an explicit act.
        const bucket = new aws.s3.Bucket(name, { bucketPrefix: `cutover-${args.site}-${args.purpose}-`, tags }, { ...child, protect: true });
        new aws.s3.BucketServerSideEncryptionConfiguration(`${name}-sse`, {
            bucket: bucket.id,
            rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }],
        }, child);
        new aws.s3.BucketVersioning(`${name}-versioning`, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } }, child);
        new aws.s3.BucketPublicAccessBlock(`${name}-public-access`, {
            bucket: bucket.id,
            blockPublicAcls: true,
            blockPublicPolicy: true,
            ignorePublicAcls: true,
            restrictPublicBuckets: true,
        }, child);
        new aws.s3.BucketOwnershipControls(`${name}-ownership`, { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } }, child);
        new aws.s3.BucketLifecycleConfiguration(`${name}-lifecycle`, {
            bucket: bucket.id,
            rules: [
                { id: "abort-incomplete-uploads", status: "Enabled", filter: {}, abortIncompleteMultipartUpload: { daysAfterInitiation: 7 } },
                ...(args.expireDays
                    ? [{ id: "expire", status: "Enabled", filter: {}, expiration: { days: args.expireDays }, noncurrentVersionExpiration: { noncurrentDays: args.expireDays } }]
                    : []),
            ],
        }, child);

        const user = new aws.iam.User(`${name}-writer`, { name: pulumi.interpolate`${bucket.id}-job`, tags }, child);
        const objectActions = args.access === "no-delete"
            ? ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
            : ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"];
        new aws.iam.UserPolicy(`${name}-writer`, {
            user: user.name,
            policy: bucket.arn.apply((arn) => JSON.stringify({
                Version: "2012-10-17",
                Statement: [
                    { Effect: "Allow", Action: ["s3:ListBucket", "s3:GetBucketLocation"], Resource: arn },
                    { Effect: "Allow", Action: objectActions, Resource: `${arn}/*` },
                ],
            })),
        }, child);
        const key = new aws.iam.AccessKey(`${name}-writer`, { user: user.name }, { ...child, additionalSecretOutputs: ["secret"] });
        this.bucket = bucket.id;
        this.region = bucket.region;
        this.accessKeyId = key.id;
        this.secretAccessKey = pulumi.secret(key.secret);
        this.registerOutputs({ bucket: this.bucket });
    }
}
