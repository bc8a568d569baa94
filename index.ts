// cutover: one hosting site per stack. Config is validated before any resource exists.
import { loadSiteConfig } from "./components/config";
import { Site } from "./components/site";

const config = loadSiteConfig();
const built = new Site(config.site, { config });

// The contract between the two stacks (see README, "Outputs").
export const site = config.site;
export const provider = config.provider;
export const network = { cidr: config.networkCidr };
export const hosts = built.hosts;
export const edge = built.edge;
export const inventory = built.inventory;
export const peer = built.peer ?? null;
export const mesh = built.mesh ?? null;
export const db = built.db ?? null;
export const cache = built.cache ?? null;
export const dns = built.dns ?? null;
/** How the peer's runbook logs in to this site's db host: the user, and this stack's deploy public key (created hosts). */
export const access = built.access;
export const runbook = built.runbook ?? null;
/** Where the database's encrypted backups are; the passphrase is a secret (pulumi stack output backups --show-secrets). */
export const backups = built.backups ?? null;
export const media = built.media ?? null;
