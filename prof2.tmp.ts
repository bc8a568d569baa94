import { evaluate } from "./tools/offline/evaluate";
import { readStackFile } from "./tools/offline/stackfile";
(async () => {
  const sf = readStackFile(process.argv[3], process.argv[2]);
  delete sf.config["cutover:peer"];
  if (sf.config["cutover:live"]) sf.config["cutover:live"] = sf.config["cutover:site"];
  for (const k of ["cutover:database", "cutover:cache"]) if (sf.config[k]) sf.config[k] = JSON.stringify({ ...JSON.parse(sf.config[k]), phase: "primary" });
  if (process.env.LIMIT0) Error.stackTraceLimit = 0;
  const t = Date.now();
  const e = await evaluate("/work/main", sf, { preview: false } as any);
  console.log("eval ms", Date.now() - t, e.registrations.length, e.error?.message?.slice(0,300), "rss MB", Math.round(process.resourceUsage().maxRSS/1024));
  const t2 = Date.now(); const j = JSON.stringify(e); console.log("json ms", Date.now()-t2, (j.length/1e6).toFixed(1), "MB");
  process.exit(0);
})();
