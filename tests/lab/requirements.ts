// Whether a lab suite can run here: root on Linux with namespaces (checkMachine) and the
// daemons it drives. Without them the suite skips with the reason, unless
// CUTOVER_LAB_REQUIRED=1 (CI), where a missing piece is an error.
import { spawnSync } from "child_process";
import { checkMachine } from "../../lab/lab";

export function labSkip(commands: string[]): string | false {
    const missing = commands.filter((c) => spawnSync("bash", ["-c", `command -v ${c}`]).status !== 0);
    const problems = [...checkMachine(), ...(missing.length > 0 ? [`${missing.join(", ")} missing: run lab/install-packages.sh`] : [])];
    const skip = problems.join("; ") || false;
    if (skip && process.env.CUTOVER_LAB_REQUIRED === "1") throw new Error(`lab tests are required here but cannot run: ${skip}`);
    return skip;
}
