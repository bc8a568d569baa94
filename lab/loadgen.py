#!/usr/bin/env python3
"""Rehearsal load generator: POST /write?client=<c>&seq=<n> at a steady rate through an edge,
each request on its own thread (a held request never delays the next one). Writes one JSON
line per request: seq, sent (ms since the epoch), ms (latency), status (0 = no answer),
served (the app's "<site> <host>")."""
import argparse, json, os, threading, time, urllib.error, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True, help="http://<edge>/")
parser.add_argument("--rate", type=float, default=50, help="writes per second")
parser.add_argument("--seconds", type=float, default=10, help="how long (with --stop-file: at most)")
parser.add_argument("--stop-file", help="stop sending once this file exists")
parser.add_argument("--client", default="c1")
parser.add_argument("--timeout", type=float, default=30)
parser.add_argument("--out", required=True)
args = parser.parse_args()

lock = threading.Lock()
out = open(args.out, "w")


def write(seq):
    sent = time.time()
    status, served = 0, ""
    try:
        req = urllib.request.Request("%swrite?client=%s&seq=%d" % (args.url, args.client, seq), data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=args.timeout) as r:
            status, served = r.status, r.read().decode().strip()
    except urllib.error.HTTPError as e:
        status = e.code
    except Exception:
        status = 0
    line = json.dumps({"seq": seq, "sent": round(sent * 1000, 1), "ms": round((time.time() - sent) * 1000, 1), "status": status, "served": served})
    with lock:
        out.write(line + "\n")
        out.flush()


threads = []
start = time.time()
count = int(args.rate * args.seconds)
for seq in range(1, count + 1):
    if args.stop_file and os.path.exists(args.stop_file):
        break
    delay = start + (seq - 1) / args.rate - time.time()
    if delay > 0:
        time.sleep(delay)
    t = threading.Thread(target=write, args=(seq,))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
out.close()
