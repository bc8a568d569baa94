// Reads Pulumi.<stack>.yaml the way the Pulumi CLI hands config to a program.
import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";

export interface StackFile {
    stack: string;
    file: string;
    /** Config as the engine passes it: "ns:key" -> text (structured values as JSON). */
    config: Record<string, string>;
    /** Keys whose value is `secure:` in the file (ciphertext; offline we use a placeholder). */
    secretKeys: string[];
}

/** Stands in for a `secure:` value we cannot decrypt offline. Never a real secret. */
export const OFFLINE_SECRET_PLACEHOLDER = "offline-placeholder-for-an-encrypted-value";

export class StackFileError extends Error {}

export function stackFilePath(dir: string, stack: string): string {
    return path.join(dir, `Pulumi.${stack}.yaml`);
}

/** `secrets` supplies real values for secure keys (the lab's generated keys); others get the placeholder. */
export function readStackFile(dir: string, stack: string, secrets: Record<string, string> = {}): StackFile {
    const file = stackFilePath(dir, stack);
    if (!/^[A-Za-z0-9_.-]+$/.test(stack)) throw new StackFileError(`--stack: ${JSON.stringify(stack)} is not a stack name (letters, digits, '_', '.', '-')`);
    if (!fs.existsSync(file)) {
        const known = fs.readdirSync(dir).filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f)).map((f) => f.slice(7, -5));
        throw new StackFileError(`--stack: no ${path.basename(file)} in ${dir}; stacks here: ${known.join(", ") || "(none)"}`);
    }
    let doc: unknown;
    try {
        doc = YAML.parse(fs.readFileSync(file, "utf8"));
    } catch (e) {
        throw new StackFileError(`${path.basename(file)}: not valid YAML: ${(e as Error).message}`);
    }
    const entries = (doc as { config?: Record<string, unknown> } | null)?.config ?? {};
    if (typeof entries !== "object" || Array.isArray(entries)) throw new StackFileError(`${path.basename(file)}: "config" must be a map of keys`);
    const config: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [key, value] of Object.entries(entries)) {
        if (value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 1 && "secure" in value) {
            secretKeys.push(key);
            config[key] = secrets[key] ?? OFFLINE_SECRET_PLACEHOLDER;
        } else {
            // Structured values may hold secure leaves (pulumi config set --secret --path): the key is then secret.
            const [plain, secret] = withPlaceholders(value);
            if (secret) secretKeys.push(key);
            config[key] = secret && secrets[key] !== undefined ? secrets[key] : typeof plain === "string" ? plain : JSON.stringify(plain);
        }
    }
    for (const [key, value] of Object.entries(secrets)) {
        if (!(key in config)) {
            config[key] = value;
            secretKeys.push(key);
        }
    }
    return { stack, file, config, secretKeys };
}

/** A structured config value with each `secure:` leaf replaced by the placeholder, and whether it had one. */
function withPlaceholders(v: unknown): [unknown, boolean] {
    if (Array.isArray(v)) {
        const parts = v.map(withPlaceholders);
        return [parts.map((p) => p[0]), parts.some((p) => p[1])];
    }
    if (v !== null && typeof v === "object") {
        if (Object.keys(v).length === 1 && "secure" in v) return [OFFLINE_SECRET_PLACEHOLDER, true];
        let secret = false;
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) {
            const [p, s] = withPlaceholders(x);
            out[k] = p;
            secret ||= s;
        }
        return [out, secret];
    }
    return [v, false];
}
