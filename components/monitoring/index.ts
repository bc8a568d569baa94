// Monitoring first (OneSignal): who is alerted exists before any host, host alerts as the
// hosts appear, and uptime checks of the edge from outside. Per provider:
//   digitalocean: monitor alerts on the site's role tags (cover droplets that do not exist yet),
//                 an uptime check and alert per edge address;
//   aws:          an SNS topic (email), CPU and status-check alarms per instance, a Route 53
//                 health check per edge with its alarm (Route 53 metrics live in us-east-1);
//   existing:     Cloudflare health checks per edge address and a notification policy.
// A proxied edge admits HTTP only from Cloudflare's ranges, where DigitalOcean's and Route 53's
// checkers are not: its uptime checks are Cloudflare health checks whatever the provider.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as cloudflare from "@pulumi/cloudflare";
import * as digitalocean from "@pulumi/digitalocean";
import { Provider } from "../types";

export interface MonitoringSettings {
    emails: string[];
    cpuPercent: number;
    memoryPercent: number;
    diskPercent: number;
    path: string;
    /** existing: the Cloudflare account that sends the notifications. */
    cloudflareAccountId?: string;
}

export interface MonitoringArgs {
    site: string;
    provider: Provider;
    settings: MonitoringSettings;
    /** digitalocean: the role tags every droplet carries (they exist before the droplets). */
    roleTags: pulumi.Input<string>[];
    /** The edge admits HTTP only from Cloudflare: the uptime checks are Cloudflare's. */
    proxied: boolean;
    /** The Cloudflare zone the health checks belong to; existing: the edges to check (from config). */
    zoneId?: string;
    existingEdges?: Array<{ name: string; address: string }>;
}

/** The alert channel and provider-wide alerts: created before any host. */
export class Monitoring extends pulumi.ComponentResource {
    /** What hosts wait for: nothing is built before someone would hear about it. */
    public readonly first: pulumi.Resource[] = [];
    /** aws: the topic host alarms notify. */
    public readonly topicArn?: pulumi.Output<string>;

    constructor(name: string, private readonly args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:Monitoring", name, {}, opts);
        const s = args.settings;
        if (args.provider === "digitalocean") {
            const metrics: Array<[string, string, number]> = [
                ["cpu", "v1/insights/droplet/cpu", s.cpuPercent],
                ["memory", "v1/insights/droplet/memory_utilization_percent", s.memoryPercent],
                ["disk", "v1/insights/droplet/disk_utilization_percent", s.diskPercent],
            ];
            for (const [what, type, value] of metrics) {
                this.first.push(new digitalocean.MonitorAlert(`${name}-${what}`, {
                    description: `${args.site}: ${what} above ${value}% for 5 minutes`,
                    type,
                    compare: "GreaterThan",
                    value,
                    window: "5m",
                    tags: args.roleTags,
                    alerts: { emails: s.emails },
                }, { parent: this }));
            }
        } else if (args.provider === "aws") {
            const topic = new aws.sns.Topic(`${name}-alerts`, { name: `cutover-${args.site}-alerts`, tags: { site: args.site } }, { parent: this });
            this.topicArn = topic.arn;
            this.first.push(topic);
            s.emails.forEach((email, i) => {
                this.first.push(new aws.sns.TopicSubscription(`${name}-alerts-${i + 1}`, { topic: topic.arn, protocol: "email", endpoint: email }, { parent: this }));
            });
        } else {
            // Existing hosts' addresses are known from config: their checks come first too.
            this.first.push(...this.cloudflareChecks(name, args.existingEdges ?? []));
        }
        this.registerOutputs({});
    }

    /** Cloudflare health checks of the edges (from Cloudflare's ranges, which a proxied edge admits) and who hears of them. */
    private cloudflareChecks(name: string, targets: Array<{ name: string; address: pulumi.Input<string> }>): pulumi.Resource[] {
        const s = this.args.settings;
        const checks = targets.map((t) => new cloudflare.Healthcheck(`${t.name}-uptime`, {
            zoneId: this.args.zoneId!,
            name: `${this.args.site}-${t.name}`,
            address: t.address,
            type: "HTTP",
            httpConfig: { path: s.path, port: 80, expectedCodes: ["200"] },
            consecutiveFails: 2,
            interval: 60,
        }, { parent: this }));
        const policy = new cloudflare.NotificationPolicy(`${name}-uptime-alerts`, {
            accountId: s.cloudflareAccountId!,
            name: `cutover ${this.args.site}: edge down`,
            alertType: "health_check_status_notification",
            enabled: true,
            filters: { healthCheckIds: checks.map((c) => c.id) },
            mechanisms: { emails: s.emails.map((id) => ({ id })) },
        }, { parent: this });
        return [...checks, policy];
    }

    /** aws: alarms for one instance (CPU, failed status checks). */
    watchInstance(host: string, instanceId: pulumi.Input<string>): void {
        if (!this.topicArn) return;
        const alarm = (what: string, metricName: string, threshold: number, description: string) =>
            new aws.cloudwatch.MetricAlarm(`${host}-${what}`, {
                alarmDescription: description,
                namespace: "AWS/EC2",
                metricName,
                dimensions: { InstanceId: instanceId },
                statistic: "Maximum",
                period: 60,
                evaluationPeriods: 5,
                threshold,
                comparisonOperator: "GreaterThanThreshold",
                alarmActions: [this.topicArn!],
                okActions: [this.topicArn!],
                tags: { site: this.args.site },
            }, { parent: this });
        alarm("cpu", "CPUUtilization", this.args.settings.cpuPercent, `${host}: CPU above ${this.args.settings.cpuPercent}% for 5 minutes`);
        alarm("status", "StatusCheckFailed", 0, `${host}: failed EC2 status checks`);
    }

    /** Uptime checks of created edges from outside: each edge address, or the load balancer's name. */
    watchEdge(targets: Array<{ name: string; address?: pulumi.Input<string>; hostname?: pulumi.Input<string> }>): void {
        const s = this.args.settings;
        const site = this.args.site;
        if (this.args.proxied) {
            this.cloudflareChecks(`${site}-edge`, targets.map((t) => ({ name: t.name, address: (t.address ?? t.hostname)! })));
        } else if (this.args.provider === "digitalocean") {
            for (const t of targets) {
                const check = new digitalocean.UptimeCheck(`${t.name}-uptime`, {
                    name: `${site} ${t.name}`,
                    type: "http",
                    target: pulumi.interpolate`http://${t.address ?? t.hostname}${s.path}`,
                }, { parent: this });
                new digitalocean.UptimeAlert(`${t.name}-down`, {
                    name: `${site} ${t.name} down`,
                    checkId: check.id,
                    type: "down",
                    period: "2m",
                    notifications: [{ emails: s.emails }],
                }, { parent: this });
            }
        } else if (this.args.provider === "aws") {
            // Route 53 publishes health-check metrics in us-east-1 only: alarm and topic live there.
            const east = new aws.Provider(`${site}-monitoring-us-east-1`, { region: "us-east-1" }, { parent: this });
            const topic = new aws.sns.Topic(`${site}-uptime-alerts`, { name: `cutover-${site}-uptime`, tags: { site } }, { parent: this, provider: east });
            s.emails.forEach((email, i) => new aws.sns.TopicSubscription(`${site}-uptime-alerts-${i + 1}`, { topic: topic.arn, protocol: "email", endpoint: email }, { parent: this, provider: east }));
            for (const t of targets) {
                const check = new aws.route53.HealthCheck(`${t.name}-uptime`, {
                    type: "HTTP",
                    ...(t.address ? { ipAddress: t.address } : { fqdn: t.hostname }),
                    port: 80,
                    resourcePath: s.path,
                    failureThreshold: 3,
                    requestInterval: 30,
                    tags: { site, Name: `${site} ${t.name}` },
                }, { parent: this });
                new aws.cloudwatch.MetricAlarm(`${t.name}-down`, {
                    alarmDescription: `${site}: ${t.name} fails its uptime check`,
                    namespace: "AWS/Route53",
                    metricName: "HealthCheckStatus",
                    dimensions: { HealthCheckId: check.id },
                    statistic: "Minimum",
                    period: 60,
                    evaluationPeriods: 2,
                    threshold: 1,
                    comparisonOperator: "LessThanThreshold",
                    alarmActions: [topic.arn],
                    okActions: [topic.arn],
                    tags: { site },
                }, { parent: this, provider: east });
            }
        }
    }
}
