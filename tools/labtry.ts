import { Lab } from "../lab/lab";
import { provision } from "../lab/runtime";
import { labHostEntries } from "../lab/topology";
import { referenceConfig, stackDir } from "../tests/helpers";
(async () => {
  const lab = new Lab(undefined, () => {});
  await lab.up();
  for (const s of ["lab-old", "lab-new", "lab-old"]) await provision(lab, s);
  const dir = stackDir({ "lab-new": { ...referenceConfig("lab-new"), "cutover:hosts": labHostEntries(lab.plan, "new", true) }, "lab-old": referenceConfig("lab-old") });
  await provision(lab, "lab-new", { stackDir: dir }); await provision(lab, "lab-old", { stackDir: dir });
  await new Promise(r => setTimeout(r, 3000));
  console.log((await lab.enter("new-app-2", "ip -4 addr show cutover; ip route | grep 198.18; cat /etc/tinc/cutover/tinc.conf | grep -v '^#'; tail -20 /var/log/tinc.cutover.log; ping -c1 -W1 198.18.2.30")).stdout);
  console.log((await lab.enter("new-app-1", "tincd -n cutover -kUSR2; sleep 0.5; tail -25 /var/log/tinc.cutover.log | grep -v Statistics")).stdout);
})().catch((e) => { console.error("FAILED", e.message); process.exit(1); });
