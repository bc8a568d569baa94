// One read-only inventory step per existing host, run before any step that changes the host.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Host } from "../types";
import { HostInventory, inventoryScript, parseInventory } from "./render";

export { HostInventory } from "./render";

export interface InventoryArgs {
    hosts: Host[];
}

export class Inventory extends pulumi.ComponentResource {
    /** Each host's step, by host name: what that host's first changing step waits for. */
    public readonly stepOf: Record<string, command.remote.Command> = {};
    /** What each host ran before the program touched it, by host name (null: not collected yet, as under mocks). */
    public readonly observed: pulumi.Output<Record<string, HostInventory | null>>;
    /** The same, one output per host. */
    public readonly observedOf: Record<string, pulumi.Output<HostInventory | null>> = {};

    constructor(name: string, args: InventoryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("cutover:index:Inventory", name, {}, opts);
        for (const host of args.hosts) {
            const step = new command.remote.Command(`${name}-${host.name}`, {
                connection: host.connection,
                create: inventoryScript(host.name),
                // Hundreds of package lines: kept out of the update's log (still in the output); errors shown.
                logging: "stderr",
            }, { parent: this });
            this.stepOf[host.name] = step;
            this.observedOf[host.name] = step.stdout.apply((out) => (out ? parseInventory(out) : null));
        }
        this.observed = pulumi.all(this.observedOf);
        this.registerOutputs({ observed: this.observed });
    }
}
