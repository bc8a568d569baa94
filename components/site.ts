import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as random from "@pulumi/random";
import { overlaps, parseCidr } from "./cidr";
import { ConfigError, SiteConfig } from "./config";
import { CloudFirewall, HostFirewall, MeshFirewall } from "./firewall";
import { CLOUDFLARE_IPV4, CLOUDFLARE_IPV6 } from "./firewall/cloudflare";
import { APP_PORT, DB_PORTS, InboundRule, Service, edgeAdminRules, hostFirewallScript, inboundRules, meshRules, roleServices } from "./firewall/render";
import { AppPool } from "./hosts";
import { authorizePeerScript, cloudInit } from "./hosts/render";
import { DnsOutput, DnsRecords } from "./dns";
import { ProbeApp } from "./app";
import { Edge as EdgeProxy } from "./edge";
import { Backend } from "./edge/render";
import { Cache, CacheOutput, Database, DbOutput, PeerLink, ReplicationCa } from "./database";
import { ManagedDatabase } from "./database/managed";
import { rdsSwitchScript } from "./database/rds";
import { waitingScript } from "./database/mysql";
import { PG_PROBE_ROLE } from "./database/postgres";
import { TincMesh } from "./mesh";
import { HostInventory, Inventory } from "./inventory";
import { KeptListener, keptListeners, keptWarning, listenAddresses } from "./inventory/adopt";
import { Monitoring } from "./monitoring";
import { Backups, BackupsOutput } from "./backup";
import { MediaSync } from "./media";
import { Runbook, RunbookDb, RunbookOutput } from "./runbook";
import { MeshHost } from "./mesh/render";
import { SiteNetwork } from "./network";
import { secretStdin } from "./database/ca";
import { SSH_DIAL_ERROR_LIMIT, SSH_PER_DIAL_TIMEOUT } from "./hosts";
import { Edge, ROLES, Role, SshConnection } from "./types";

export interface HostSummary {
    name: string;
    role: Role;
    publicAddress: string;
    privateAddress: string;
}

export interface InventoryEntry {
    site: string;
    role: Role;
    provider: string;
    /** Hosts behind an auto-scaling group are counted, not named. */
    autoscaled: boolean;
    services: Service[];
    /** Existing hosts: what the host ran before the program changed it (see components/inventory). */
    observed?: HostInventory | null;
    /** Existing hosts: what of that stays reachable (see components/inventory/adopt.ts); null until the inventory ran. */
    kept?: KeptListener[] | null;
}

/** A site's `mesh` output. */
export interface PeerMesh {
    cidr: string;
    siteRange: string;
    members: MeshHost[];
    /** Node names of the other site's members this site includes. */
    peerMembers?: string[];
}

export interface SiteArgs {
    config: SiteConfig;
}

/** The roles a site has, in a stable order. */
function rolesOf(config: SiteConfig): Role[] {
    const present = new Set<Role>(config.provider === "existing" ? config.existingHosts.map((h) => h.role) : (Object.keys(config.pools) as Role[]));
    return ROLES.filter((r) => present.has(r));
}

/** One hosting site: its network, hosts and both firewall layers, and the outputs the peer stack reads. */
export class Site extends pulumi.ComponentResource {
    public readonly hosts: pulumi.Output<HostSummary[]>;
    public readonly edge: pulumi.Output<Edge>;
    public readonly inventory: pulumi.Output<Record<string, InventoryEntry>>;
    /** The peer stack's site name and edge, when a peer is configured. */
    public readonly peer?: pulumi.Output<{ stack: string; site: string; edge: Edge }>;
    /** This site's database for the other site (credentials secret), when it replicates. */
    public readonly db?: Database["output"];
    /** This site's Redis for the other site (password secret), when the site has one. */
    public readonly cache?: Cache["output"];
    /** This site's origin name and, in the stack that owns them, the public names and the live site. */
    public readonly dns?: pulumi.Output<DnsOutput>;
    /** This site's part of the mesh (public entries only), when the site has a mesh. */
    public readonly mesh?: pulumi.Output<PeerMesh>;
    /** The last cutover's audit record, in the stack that owns `cutover:live`. */
    public readonly runbook?: pulumi.Output<RunbookOutput>;
    /** Where the database's encrypted backups go, and their passphrase (secret). */
    public readonly backups?: BackupsOutput;
    /** Where the migrated media is. */
    public readonly media?: pulumi.Output<string>;
    /** How the peer's runbook logs in here: the login user, and this stack's deploy public key (created hosts). */
    public readonly access: { user: string; publicKey: pulumi.Output<string> | null; edgesManaged: boolean };

    constructor(name: string, args: SiteArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:Site", name, {}, opts);
        const c = args.config;
        const roles = rolesOf(c);

        // One explicit AWS provider per site, so the region lives in one config key.
        const childOpts: pulumi.ComponentResourceOptions = { parent: this };
        if (c.provider === "aws") childOpts.providers = [new aws.Provider(`${name}-aws`, { region: c.region as aws.Region }, { parent: this })];

        const publicSources = c.edgeProxied ? [...CLOUDFLARE_IPV4, ...CLOUDFLARE_IPV6] : ["0.0.0.0/0", "::/0"];
        // Redis on the db host when the site has a cache but no cache host.
        const cacheOnDb = c.cache !== undefined && !roles.includes("cache");
        const rules: Partial<Record<Role, InboundRule[]>> = {};
        for (const role of roles) {
            rules[role] = inboundRules({ role, dbEngine: c.dbEngine, adminCidrs: c.adminCidrs, siteCidr: c.networkCidr, publicSources, meshCidr: c.mesh?.cidr, cacheOnDb, rdsRelay: c.managedDb !== undefined });
        }

        const network = new SiteNetwork(`${name}-network`, { site: c.site, provider: c.provider, region: c.region, cidr: c.networkCidr }, childOpts);
        const autoscaled = c.pools.app?.autoscaling !== undefined;
        const cloudFirewall = new CloudFirewall(`${name}-firewall`, { site: c.site, provider: c.provider, rules, vpcId: network.vpcId, loadBalancer: autoscaled, mesh: c.mesh !== undefined }, childOpts);

        // Monitoring first: whoever is alerted exists before the first host does.
        const monitoring = c.monitoring
            ? new Monitoring(`${name}-monitoring`, {
                  site: c.site,
                  provider: c.provider,
                  settings: c.monitoring,
                  proxied: c.edgeProxied,
                  roleTags: Object.values(cloudFirewall.roleTags),
                  zoneId: c.dns?.zoneId,
                  existingEdges: c.existingHosts.filter((h) => h.role === "edge").map((h) => ({ name: h.name, address: h.publicAddress })),
              }, { ...childOpts, dependsOn: [cloudFirewall] })
            : undefined;

        const userData = (hostname: string, role: Role) =>
            cloudInit({ hostname, authorizedKeys: c.sshPublicKeys, firewallScript: hostFirewallScript(hostname, rules[role] ?? []) });
        const common = { site: c.site, sshUser: c.sshUser, userData };
        const pool = new AppPool(`${name}-pool`,
            c.provider === "digitalocean"
                ? { ...common, provider: "digitalocean", region: c.region, image: c.image, dbEngine: c.dbEngine, pools: c.pools, vpcId: network.vpcId, roleTags: cloudFirewall.roleTags }
                : c.provider === "aws"
                  ? { ...common, provider: "aws", image: c.image, pools: c.pools, subnetIds: network.subnetIds, vpcId: network.vpcId, securityGroupIds: cloudFirewall.securityGroupIds, loadBalancerGroupId: cloudFirewall.loadBalancerGroupId, meshGroupId: cloudFirewall.meshGroupId, zone: c.dns ? { zoneId: c.dns.zoneId, zone: c.dns.zone } : undefined }
                  : { ...common, provider: "existing", hosts: c.existingHosts, privateKey: c.sshPrivateKey!, bastion: c.bastion },
            { ...childOpts, dependsOn: [cloudFirewall, ...(monitoring?.first ?? [])] });
        if (monitoring) {
            for (const [host, id] of Object.entries(pool.instanceIds)) monitoring.watchInstance(host, id);
            if (c.provider !== "existing") {
                monitoring.watchEdge(autoscaled
                    ? [{ name: `${c.site}-lb`, hostname: pool.edge.apply((e) => e.hostname) }]
                    : pool.hosts.filter((h) => h.role === "edge").map((h) => ({ name: h.name, address: h.publicAddress })));
            }
        }

        // The peer's outputs, as last deployed: its edge and hosts, its mesh members.
        const ref = c.peer ? new pulumi.StackReference(`${name}-peer`, { name: c.peer }, { parent: this }) : undefined;
        const peerMesh = ref ? ref.getOutput("mesh").apply((m) => this.checkPeerMesh(c, m as PeerMesh | undefined)) : pulumi.output([] as MeshHost[]);

        let meshRulesOut: pulumi.Output<InboundRule[]> = pulumi.output([]);
        let mesh: TincMesh | undefined;
        if (c.mesh) {
            const plan = c.mesh;
            const addresses = pulumi.all([pulumi.all(pool.hosts.map((h) => h.publicAddress)), peerMesh]).apply(([mine, theirs]) => [...mine, ...theirs.map((m) => m.publicAddress)]);
            meshRulesOut = addresses.apply((a) => meshRules(plan.port, a));
            new MeshFirewall(`${name}-meshfw`, { site: c.site, provider: c.provider, rules: meshRulesOut, siteTag: pool.siteTag, meshGroupId: cloudFirewall.meshGroupId }, childOpts);
        }
        // Existing hosts are inventoried before the first step that changes them (Ghost(Pro)'s step 1).
        const inventory = c.provider === "existing" ? new Inventory(`${name}-inventory`, { hosts: pool.hosts }, childOpts) : undefined;
        // The edges' admin socket: only this site's and the peer's database host, over the mesh.
        const ownDb = pool.hosts.find((h) => h.role === "db");
        const runbookHosts = pulumi.all([c.mesh && ownDb ? c.mesh.addresses[ownDb.name] : "", ref ? ref.getOutput("db").apply((d) => ((d ?? {}) as { meshAddress?: string }).meshAddress ?? "") : ""]);
        const roleRules = c.mesh && c.edgeManaged ? { edge: runbookHosts.apply((addresses) => edgeAdminRules(addresses)) } : {};
        // What the inventory saw serving stays reachable (cutover:adopt); null until it has run.
        // Per host, from that host's own inventory step (a firewall step waits for its host's only).
        const keptOf = inventory
            ? Object.fromEntries(pool.hosts.map((h) => [h.name, inventory.observedOf[h.name].apply((found) => {
                  const kept = found ? keptListeners(h.name, found, rules[h.role] ?? [], c.adoptClose) : null;
                  const warning = kept ? keptWarning(h.name, kept) : undefined;
                  if (warning) pulumi.log.warn(warning, this);
                  return kept;
              })]))
            : undefined;
        const kept = keptOf
            ? pulumi.all(keptOf).apply((byHost) => {
                  if (Object.values(byHost).some((k) => k === null)) {
                      pulumi.log.warn(`cutover:adopt: existing hosts keep what their inventory finds listening beyond the role's ports (the inventory output's "kept"), until cutover:adopt.close names it`, this);
                  }
                  return byHost;
              })
            : undefined;
        const hostRules = keptOf ? Object.fromEntries(Object.entries(keptOf).map(([h, k]) => [h, k.apply((listeners) => (listeners ?? []).map((x) => x.rule))])) : undefined;
        // Each host's steps wait for that host's steps before them, not every host's: a site
        // of hundreds stays linear (the mesh's own reach, through the hubs, is reachableFrom).
        const perHost = <T extends pulumi.Resource>(of: Record<string, T> | undefined) => Object.fromEntries(pool.hosts.map((h) => [h.name, of?.[h.name] ? [of[h.name]] : []]));
        const hostFirewall = new HostFirewall(`${name}-hostfw`, { hosts: pool.hosts, rules, extraRules: meshRulesOut, roleRules, hostRules, after: perHost(inventory?.stepOf) }, childOpts);
        if (c.mesh) {
            mesh = new TincMesh(`${name}-mesh`, { site: c.site, hosts: pool.hosts, plan: c.mesh, peerMembers: peerMesh, after: perHost(hostFirewall.stepOf) }, childOpts);
            // peerMembers: the other site's members this site has taken in (the peer checks it knows them).
            this.mesh = pulumi.all([mesh.members, mesh.allMembers]).apply(([members, all]) => ({
                cidr: c.mesh!.cidr,
                siteRange: c.mesh!.siteRange,
                members,
                peerMembers: all.filter((m) => m.site !== c.site).map((m) => m.node),
            }));
        }

        // Cross-site replication runs over the mesh; a site without one keeps its data to itself.
        const dbHost = pool.hosts.find((h) => h.role === "db");
        // The probe app's database account (config allows the probe only with a db host and a mesh).
        // MySQL/MariaDB: a password; PostgreSQL: a client certificate of the site's CA (issued below).
        const probePassword = c.probe && c.dbEngine !== "postgres" ? new random.RandomPassword(`${name}-probe-password`, { length: 32, special: false }, { parent: this }).result : undefined;
        let probeTls: { caCert: pulumi.Output<string>; clientCert: pulumi.Output<string>; clientKey: pulumi.Output<string> } | undefined;
        let database: Database | undefined;
        // Whether the peer site has taken in all of ours (then it also authorized our key).
        let knowsUs: pulumi.Output<boolean> = pulumi.output(false);
        const cacheHost = c.cache ? pool.hosts.find((h) => h.name === c.cache!.host) : undefined;
        // RDS (Adido): replication relayed by the first worker host.
        let managedDb: ManagedDatabase | undefined;
        const relayHost = c.managedDb ? pool.hosts.find((h) => h.role === "worker") : undefined;
        if (mesh && c.mesh && (dbHost || cacheHost || relayHost)) {
            const ca = new ReplicationCa(`${name}-ca`, { site: c.site }, childOpts);
            const peerDeployed = ref ? ref.getOutput("site").apply((s) => typeof s === "string" && s !== "") : false;
            // The peer can be reached over the mesh only once its site has taken in all of ours.
            knowsUs = ref
                ? pulumi.all([ref.getOutput("mesh"), mesh.members]).apply(([pm, mine]) => mine.every((m) => ((pm as PeerMesh | undefined)?.peerMembers ?? []).includes(m.node)))
                : pulumi.output(false);
            const link = <T>(key: string): PeerLink<T> => ({
                output: ref ? ref.getOutput(key).apply((d) => (d ?? undefined) as T | undefined) : undefined,
                deployed: peerDeployed,
                knowsUs,
            });
            if (dbHost) {
                // An adopted server keeps listening where its apps connect (the inventory saw it there).
                const legacyAddresses = inventory?.observed.apply((seen) => listenAddresses(seen[dbHost.name], DB_PORTS[c.dbEngine]));
                database = new Database(`${name}-db`, { engine: c.dbEngine, phase: c.dbPhase, host: dbHost, mesh: c.mesh, ca, peer: link<DbOutput>("db"), probe: c.probe, probePassword, after: [...mesh.reachableFrom(dbHost.name), ...pool.dataSteps], legacyAddresses }, childOpts);
                if (c.probe && c.dbEngine === "postgres") {
                    const client = ca.issue(`${name}-probe-client`, { commonName: PG_PROBE_ROLE, usage: "client" });
                    probeTls = { caCert: ca.certPem, clientCert: client.certPem, clientKey: client.keyPem };
                }
                this.db = database.output;
            }
            if (relayHost && c.managedDb) {
                managedDb = new ManagedDatabase(`${name}-rds`, {
                    site: c.site,
                    phase: c.dbPhase,
                    settings: c.managedDb,
                    vpcId: network.vpcId,
                    subnetIds: network.subnetIds,
                    siteCidr: c.networkCidr,
                    relay: relayHost,
                    relayMeshAddress: c.mesh.addresses[relayHost.name],
                    peer: link<DbOutput>("db"),
                    peerSite: ref ? ref.getOutput("site").apply((x) => (x ?? "") as string) : "",
                    after: mesh.reachableFrom(relayHost.name),
                }, childOpts);
                this.db = managedDb.output as unknown as Database["output"];
            }
            if (cacheHost && c.cache) {
                const peerDbCa = pulumi.output(link<DbOutput>("db").output).apply((d) => d?.caCert);
                this.cache = new Cache(`${name}-cache`, { phase: c.cache.phase, host: cacheHost, mesh: c.mesh, ca, peer: link<CacheOutput>("cache"), peerDbCa, after: [...mesh.reachableFrom(cacheHost.name), ...pool.dataSteps] }, childOpts).output;
            }
        }

        // The edge: HAProxy in front of the apps of both sites (the peer's over the mesh).
        const appHosts = pool.hosts.filter((h) => h.role === "app");
        const edgeHosts = pool.hosts.filter((h) => h.role === "edge");
        const after = mesh ? mesh.commands : hostFirewall.commands;
        const probe = c.probe && dbHost && c.mesh && (probePassword || probeTls)
            ? new ProbeApp(`${name}-probe`, { site: c.site, hosts: appHosts, db: { address: c.mesh.addresses[dbHost.name], port: DB_PORTS[c.dbEngine], engine: c.dbEngine, password: probePassword, tls: probeTls }, after: [...after, ...(database ? [database.step] : [])] }, childOpts)
            : undefined;

        // The peer's runbook (in the stack that owns cutover:live) logs in to this db host with
        // the peer's deploy key; a detached site (which has no peer) takes it away again.
        this.access = { user: c.sshUser, publicKey: pool.deployPublicKey ?? null, edgesManaged: c.edgeManaged };
        if (dbHost && c.mesh && (ref || c.dbPhase === "detached")) {
            const peerKey = ref
                ? pulumi.all([ref.getOutput("site"), ref.getOutput("access")]).apply(([site, a]) => ({ site: (site ?? "") as string, key: ((a ?? {}) as { publicKey?: string }).publicKey ?? undefined }))
                : pulumi.output({ site: "peer", key: undefined });
            new command.remote.Command(`${name}-authorize-peer-${dbHost.name}`, {
                connection: dbHost.connection,
                create: peerKey.apply((p) => authorizePeerScript(dbHost.name, p.site || "peer", p.key)),
            }, { parent: this, dependsOn: hostFirewall.commands });
        }

        // The stack that owns `cutover:live` runs the cutover runbook when it changes.
        let switched: pulumi.Resource[] = [];
        if (c.live && ref && database && dbHost && c.mesh) {
            const plan = c.mesh;
            const peerInfo = pulumi.all([ref.getOutput("site"), ref.getOutput("hosts"), ref.getOutput("db"), ref.getOutput("access"), ref.getOutput("mesh"), ref.getOutput("cache")]).apply(([site, hosts, db, access, mesh, cache]) => ({
                site: (site ?? "") as string,
                hosts: (hosts ?? []) as HostSummary[],
                db: (db ?? undefined) as DbOutput | undefined,
                cache: (cache ?? undefined) as CacheOutput | undefined,
                user: ((access ?? {}) as { user?: string }).user ?? c.sshUser,
                edgesManaged: ((access ?? {}) as { edgesManaged?: boolean }).edgesManaged,
                members: ((mesh as PeerMesh | undefined)?.members ?? []),
            }));
            // Redis on the db host: the runbook switches it in the same window as the database
            // (a dual-primary flip has no window: Redis has no second primary to route to).
            const switchesCache = cacheOnDb && this.cache !== undefined && (c.dbEngine === "postgres" || c.runbook.strategy === "freeze");
            if (c.cache && !switchesCache) {
                pulumi.log.warn(`cutover:cache: the runbook does not switch this Redis (${cacheOnDb ? `beside ${c.dbEngine}, strategy ${c.runbook.strategy}` : `on its own host ${c.cache.host}`}); promote it with cutover:cache.phase when cutover:live flips`, this);
            }
            // The peer's database host is reached with this stack's key (README: "Access across stacks").
            const peerDb = pulumi.all([peerInfo, dbHost.connection.privateKey]).apply(([p, key]): RunbookDb => {
                const host = p.hosts.find((h) => h.name === p.db?.host);
                if (!p.db || !host) throw new ConfigError([`cutover:live: ${JSON.stringify(c.live)} needs the peer stack's database (its db output); deploy the peer stack with cutover:database and cutover:mesh first`]);
                const connection: SshConnection = { host: host.publicAddress, port: 22, user: p.user, privateKey: key, dialErrorLimit: SSH_DIAL_ERROR_LIMIT, perDialTimeout: SSH_PER_DIAL_TIMEOUT };
                if (switchesCache && p.cache?.host !== p.db.host) {
                    throw new ConfigError([`cutover:cache: the runbook switches a Redis that lives on the db host of both sites; the peer stack's Redis is ${p.cache ? `on ${p.cache.host}, its db host is ${p.db.host}` : "absent"}: give both sites the same layout (no cache host), or remove cutover:cache here`]);
                }
                return { site: p.site, host: p.db.host, meshAddress: p.db.meshAddress, port: p.db.port, connection, password: p.db.replication?.password ?? "", cachePassword: p.cache?.password };
            });
            const edges = peerInfo.apply((p) => {
                // The switch drives the peer's edges too: refuse at plan time, not on the night.
                const peerEdges = p.hosts.filter((h) => h.role === "edge").map((h) => h.name);
                if (p.edgesManaged === false && peerEdges.length > 0) {
                    throw new ConfigError([`cutover:live: ${JSON.stringify(c.live)} is not allowed yet: the runbook holds and routes writes on every edge, but the peer stack ${c.peer} does not run HAProxy on its edges (${peerEdges.join(", ")}); set cutover:edge.manage to true in the peer stack and run pulumi up there first`]);
                }
                return [

                ...edgeHosts.map((h) => ({ name: h.name, meshAddress: plan.addresses[h.name] })),
                ...p.members.filter((m) => p.hosts.some((h) => h.name === m.host && h.role === "edge")).map((m) => ({ name: m.host, meshAddress: m.meshAddress })),
                ];
            });
            const runbook = new Runbook(`${name}-runbook`, {
                live: c.live,
                flavor: c.dbEngine,
                settings: c.runbook,
                cache: switchesCache,
                peerReady: knowsUs,
                // PostgreSQL authenticates by certificate: no password.
                own: pulumi.all([database.output.replication?.password ?? "", switchesCache ? this.cache!.password : ""]).apply(([password, cachePassword]) => ({ site: c.site, host: dbHost.name, meshAddress: plan.addresses[dbHost.name], port: DB_PORTS[c.dbEngine], connection: dbHost.connection, password, cachePassword })),
                peer: peerDb,
                edges,
                after: [database.step, ...(probe?.commands ?? [])],
            }, childOpts);
            switched = [runbook.switched];
            this.runbook = runbook.output;
        }

        if (c.backups && dbHost) {
            this.backups = new Backups(`${name}-backups`, { site: c.site, engine: c.dbEngine, host: dbHost, settings: c.backups, after: database ? [database.step] : after }, childOpts).output;
        }
        if (c.media) {
            const host = pool.hosts.find((h) => h.name === c.media!.host)!;
            this.media = new MediaSync(`${name}-media`, { site: c.site, host, plan: c.media.plan, region: c.region, credentials: c.media.credentials, after }, childOpts).target;
        }

        // With RDS the flip is one switch on the relay host: freeze the old server, catch up, promote RDS.
        if (c.live && ref && managedDb && relayHost) {
            const m = managedDb;
            const rdsSwitch = new command.remote.Command(`${name}-runbook-switch`, {
                connection: relayHost.connection,
                create: pulumi.all([m.plan, ref.getOutput("site")]).apply(([p, peerSite]) => {
                    const oldSite = (peerSite ?? "") as string;
                    return p
                        ? rdsSwitchScript(p, c.live === c.site ? oldSite : c.site, c.live!, c.runbook)
                        : waitingScript("switch", relayHost.name, `RDS does not replicate from ${oldSite || "the old site"} yet`);
                }),
                stdin: secretStdin({ "admin-password": m.adminPassword, "peer-password": m.peerPassword }),
            }, { parent: this, dependsOn: [m.step] });
            switched = [rdsSwitch];
        }

        if (c.edgeManaged && edgeHosts.length > 0 && !autoscaled) {
            const own = pulumi.all(appHosts.map((h) => (c.mesh ? pulumi.output(c.mesh.addresses[h.name]) : h.privateAddress).apply((address): Backend => ({ name: h.name, address, port: APP_PORT }))));
            const peerApps = ref && c.mesh ? pulumi.all([ref.getOutput("site"), ref.getOutput("hosts"), ref.getOutput("mesh")]).apply(([site, hosts, m]) => peerBackends(site, hosts, m)) : pulumi.output({});
            const sites = pulumi.all([own, peerApps]).apply(([mine, theirs]) => ({ ...theirs, [c.site]: mine }));
            // After a (re)load the edge serves the live site: this stack's choice, else the peer's.
            const live = c.live ? pulumi.output(c.live) : ref ? ref.getOutput("dns").apply((d) => ((d as DnsOutput | undefined)?.live ?? c.site)) : pulumi.output(c.site);
            // After the runbook: its switch step decides where a reloaded edge sends requests.
            new EdgeProxy(`${name}-edge`, { hosts: edgeHosts, sites, live, adminAddresses: c.mesh?.addresses ?? {}, after: [...after, ...(probe?.commands ?? []), ...switched] }, childOpts);
        }

        if (c.dns) {
            // The load balancer is the edge of an auto-scaled web tier; otherwise the edge hosts are.
            const edge = autoscaled
                ? { hostname: pool.edge.apply((e) => e.hostname) }
                : { addresses: edgeHosts.map((h) => h.publicAddress) };
            const peer = ref ? pulumi.all([ref.getOutput("site"), ref.getOutput("dns")]).apply(([site, dns]) => ({ site: site as string | undefined, dns: (dns ?? undefined) as DnsOutput | undefined })) : undefined;
            this.dns = new DnsRecords(`${name}-dns`, { site: c.site, plan: c.dns, edge, proxied: c.edgeProxied, live: c.live, peer, after: switched }, childOpts).output;
        }

        this.hosts = pulumi.all(pool.hosts.map((h) => pulumi.all([h.publicAddress, h.privateAddress]).apply(([publicAddress, privateAddress]): HostSummary => ({ name: h.name, role: h.role, publicAddress, privateAddress }))));
        this.edge = pool.edge;

        const planned: Record<string, InventoryEntry> = {};
        for (const h of pool.hosts) planned[h.name] = { site: c.site, role: h.role, provider: c.provider, autoscaled: false, services: roleServices(h.role, c.dbEngine, cacheOnDb, c.managedDb !== undefined) };
        if (autoscaled) planned[`${c.site}-app-asg`] = { site: c.site, role: "app", provider: c.provider, autoscaled: true, services: roleServices("app", c.dbEngine) };
        this.inventory = inventory && kept
            ? pulumi.all([inventory.observed, kept]).apply(([seen, keep]) => Object.fromEntries(Object.entries(planned).map(([host, entry]) => [host, { ...entry, observed: seen[host] ?? null, kept: keep[host] ?? null }])))
            : pulumi.output(planned);

        if (ref && c.peer) {
            const peerStack = c.peer;
            this.peer = pulumi.all([ref.getOutput("site"), ref.getOutput("edge"), ref.getOutput("network")]).apply(([site, edge, network]): { stack: string; site: string; edge: Edge } => {
                if (site === c.site) throw new ConfigError([`cutover:peer: ${JSON.stringify(peerStack)} is not allowed: it is site ${JSON.stringify(site)} too; the two stacks need different cutover:site names`]);
                const theirs = network?.cidr ? parseCidr(network.cidr) : undefined;
                if (theirs && overlaps(theirs, parseCidr(c.networkCidr)!)) {
                    throw new ConfigError([`cutover:network.cidr: ${JSON.stringify(c.networkCidr)} is not allowed: it overlaps ${JSON.stringify(network.cidr)} of the peer site ${site}; the address plans must be disjoint`]);
                }
                return { stack: peerStack, site: site ?? "", edge: edge ?? { kind: "addresses", addresses: [], hostname: "" } };
            });
        }
        this.registerOutputs({ hosts: this.hosts, edge: this.edge, inventory: this.inventory });
    }

    /** The peer's mesh must be the same mesh, with a site range of its own. */
    private checkPeerMesh(c: SiteConfig, m: PeerMesh | undefined): MeshHost[] {
        if (!m || !c.mesh) return [];
        if (m.cidr !== c.mesh.cidr) {
            throw new ConfigError([`cutover:mesh.cidr: ${JSON.stringify(c.mesh.cidr)} is not allowed: the peer's mesh is ${JSON.stringify(m.cidr)}; both sites must use the same mesh range`]);
        }
        if (overlaps(parseCidr(m.siteRange)!, parseCidr(c.mesh.siteRange)!)) {
            throw new ConfigError([`cutover:mesh.siteRange: ${JSON.stringify(c.mesh.siteRange)} is not allowed: it overlaps the peer's ${JSON.stringify(m.siteRange)}`]);
        }
        return m.members ?? [];
    }
}

/** The peer's app hosts at their mesh addresses, under the peer's site name (none until it is deployed). */
function peerBackends(site: unknown, hosts: unknown, mesh: unknown): Record<string, Backend[]> {
    if (typeof site !== "string" || !site) return {};
    const members = new Map(((mesh as PeerMesh | undefined)?.members ?? []).map((m) => [m.host, m.meshAddress]));
    const apps = ((hosts as HostSummary[] | undefined) ?? []).filter((h) => h.role === "app" && members.has(h.name));
    return { [site]: apps.map((h) => ({ name: h.name, address: members.get(h.name)!, port: APP_PORT })) };
}
