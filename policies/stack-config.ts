// The stack's config for the policies. A pack the engine starts (`pulumi preview
// --policy-pack`) gets no PULUMI_CONFIG: the engine sends the config in its configureStack
// call only, and @pulumi/policy 1.21 keeps the tags of that call and drops the config. So
// the pack's handler is wrapped to put the config where pulumi.runtime.allConfig() reads it,
// before the engine sends any resource. Imported before @pulumi/policy starts its server.
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

// The gRPC library @pulumi/policy serves with (one copy in node_modules).
const grpc = require(require.resolve("@grpc/grpc-js", { paths: [path.dirname(require.resolve("@pulumi/policy"))] }));

type Handler = (call: { request: any }, callback: (...args: unknown[]) => void) => void;

const addService = grpc.Server.prototype.addService;
grpc.Server.prototype.addService = function (service: unknown, impl: Record<string, Handler>) {
    if (impl && typeof impl.configureStack === "function") {
        const original = impl.configureStack;
        impl = {
            ...impl,
            configureStack(call, callback) {
                const config: Record<string, string> = {};
                call.request.getConfigMap().forEach((v: string, k: string) => (config[k] = v));
                pulumi.runtime.setAllConfig(config, call.request.getConfigSecretKeysList());
                return original(call, callback);
            },
        };
    }
    return addService.call(this, service, impl);
};
