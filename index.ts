// cutover: one hosting site per stack. The config, and the peer's stack, are checked before
// any resource is registered: the program is a function the runner awaits.
import { loadSiteConfig, requirePeerStack } from "./components/config";
import { Site } from "./components/site";

export = async () => {
    const config = loadSiteConfig();
    if (config.peer) await requirePeerStack(config.peer);
    const built = new Site(config.site, { config });

    // The contract between the two stacks (see README, "Outputs").
    return {
        site: config.site,
        provider: config.provider,
        network: { cidr: config.networkCidr },
        hosts: built.hosts,
        edge: built.edge,
        inventory: built.inventory,
        peer: built.peer ?? null,
        mesh: built.mesh ?? null,
        db: built.db ?? null,
        cache: built.cache ?? null,
        dns: built.dns ?? null,
        /** How the peer's runbook logs in to this site's db host: the user, and this stack's deploy public key (created hosts). */
        access: built.access,
        runbook: built.runbook ?? null,
        /** Where the database's encrypted backups are; the passphrase is a secret (pulumi stack output backups --show-secrets). */
        backups: built.backups ?? null,
        media: built.media ?? null,
    };
};
