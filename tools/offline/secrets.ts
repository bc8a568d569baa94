// The engine's wire form of a secret ({<sig key>: <secret sig>, value}), and how to read
// through it. One place for the evaluator, the mocks and the lab's command executor.
import * as pulumi from "@pulumi/pulumi";

export function isSecretValue(v: unknown): v is { value: unknown } {
    return typeof v === "object" && v !== null && (v as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig;
}

/** Serialized values without their secret wrappers (providers and hosts see plain values). */
export function unwrapSecrets(v: unknown): any {
    if (isSecretValue(v)) return unwrapSecrets(v.value);
    if (Array.isArray(v)) return v.map(unwrapSecrets);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
    return v;
}
