// Which registered resources a second evaluation would replace: an input the provider cannot
// change in place (its "forces a new resource" fields) differs, and ignoreChanges does not
// cover it. Listed for the hosts and what holds their data, from the providers' docs.
import { Evaluation } from "./evaluate";
import { unwrapSecrets } from "./secrets";

export const REPLACED_ON: Record<string, string[]> = {
    "aws:ec2/instance:Instance": ["ami", "availabilityZone", "subnetId", "keyName", "privateIp", "associatePublicIpAddress", "tenancy"],
    "digitalocean:index/droplet:Droplet": ["image", "region", "sshKeys", "userData", "vpcUuid"],
    "digitalocean:index/volume:Volume": ["region", "initialFilesystemType", "snapshotId"],
    "aws:rds/instance:Instance": ["identifierPrefix", "engine", "storageEncrypted", "dbSubnetGroupName", "username"],
    "aws:s3/bucket:Bucket": ["bucket", "bucketPrefix"],
};

/** "<name>: <field>" for every resource of `after` that the change from `before` replaces. */
export function replacements(before: Evaluation, after: Evaluation): string[] {
    const previous = new Map(before.registrations.map((r) => [r.urn, r]));
    const found: string[] = [];
    for (const r of after.registrations) {
        const fields = REPLACED_ON[r.type];
        const was = previous.get(r.urn);
        if (!fields || !was) continue;
        const [now, then] = [unwrapSecrets(r.inputs) as Record<string, unknown>, unwrapSecrets(was.inputs) as Record<string, unknown>];
        for (const f of fields) {
            if (r.ignoreChanges.includes(f)) continue;
            if (JSON.stringify(now[f]) !== JSON.stringify(then[f])) found.push(`${r.name}: ${f}`);
        }
    }
    return found;
}
