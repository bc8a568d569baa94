// Finding a lab host's processes from the machine's side.
import { spawnSync } from "child_process";
import * as fs from "fs";

function commOf(pid: string): string {
    try {
        return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch {
        return ""; // gone meanwhile
    }
}

/**
 * PID 1 of a lab host (the child of its `unshare`), or "" while it is not running. Found
 * by name, not as the lowest PID: PIDs wrap (pid_max is 32768 here) under a busy writer.
 */
export function hostInitPid(netns: string): string {
    const pids = spawnSync("ip", ["netns", "pids", netns], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    const unshare = pids.find((p) => commOf(p) === "unshare");
    return unshare ? (spawnSync("pgrep", ["-P", unshare], { encoding: "utf8" }).stdout.trim().split("\n")[0] ?? "") : "";
}
