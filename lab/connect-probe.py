#!/usr/bin/env python3
"""Asks each --target address:port every --every seconds, until --stop-file exists, whether
it takes new connections, the way an admin's ssh first asks: a TCP SYN. A SYN-ACK is
"listening", a RST is "refused" (what ssh reports as "Connection refused"), no answer within
--timeout is "unanswered". The SYN goes out on a raw socket, and this machine's kernel, which
knows no such connection, resets the SYN-ACK: sshd never accepts a probe (a full connection
costs it about 30 ms of CPU, re-executing itself), so probing every few ms changes nothing on
the host. Prints one JSON object: per target the SYNs sent, listening, refused, unanswered
(the last --timeout's SYNs are not counted), and the longest stretch in ms from a SYN not
answered listening to the next one sent that was. Root only (a raw socket)."""
import argparse, json, os, random, select, socket, struct, time

parser = argparse.ArgumentParser()
parser.add_argument("--target", action="append", required=True, help="address:port")
parser.add_argument("--every", type=float, default=0.005)
parser.add_argument("--seconds", type=float, default=900)
parser.add_argument("--stop-file", required=True)
parser.add_argument("--timeout", type=float, default=3)
args = parser.parse_args()


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn(src, dst, sport, dport, seq):
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = struct.pack("!4s4sBBH", socket.inet_aton(src), socket.inet_aton(dst), 0, socket.IPPROTO_TCP, len(header))
    return header[:16] + struct.pack("!H", checksum(pseudo + header)) + header[18:]


def source_for(dst):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect((dst, 9))
    src = u.getsockname()[0]
    u.close()
    return src


raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
targets = []
for t in args.target:
    address, port = t.rsplit(":", 1)
    targets.append({"name": t, "dst": address, "port": int(port), "src": source_for(address),
                    "sent": 0, "listening": 0, "refused": 0, "unanswered": 0, "answers": []})
outstanding = {}  # (dst, sport) -> (target, sent at)
sports = list(range(40000, 60000))
random.shuffle(sports)
next_port = 0


def answered(t, sent, kind):
    t[kind] += 1
    t["answers"].append((sent, kind))


def longest_gap_ms(answers):
    """From the first SYN not answered "listening" to the next SYN, sent later, that was."""
    longest, since = 0.0, None
    for sent, kind in sorted(answers):
        if kind != "listening":
            since = sent if since is None else since
        elif since is not None:
            longest, since = max(longest, sent - since), None
    return round(longest * 1000, 1)


end = time.time() + args.seconds
next_send = time.time()
while time.time() < end and not os.path.exists(args.stop_file):
    now = time.time()
    if now >= next_send:
        for t in targets:
            sport = sports[next_port % len(sports)]
            next_port += 1
            raw.sendto(syn(t["src"], t["dst"], sport, t["port"], random.getrandbits(32)), (t["dst"], 0))
            t["sent"] += 1
            outstanding[(t["dst"], sport)] = (t, now)
        next_send = now + args.every
    for key, (t, sent) in list(outstanding.items()):
        if now - sent > args.timeout:
            del outstanding[key]
            answered(t, sent, "unanswered")
    ready, _, _ = select.select([raw], [], [], max(0.0, min(next_send - time.time(), 0.05)))
    while ready:
        packet = raw.recv(65535)
        ihl = (packet[0] & 0x0F) * 4
        src = socket.inet_ntoa(packet[12:16])
        sport, dport = struct.unpack("!HH", packet[ihl:ihl + 4])
        flags = packet[ihl + 13]
        hit = outstanding.get((src, dport))
        if hit and hit[0]["port"] == sport:
            del outstanding[(src, dport)]
            t, sent = hit
            answered(t, sent, "listening" if flags & 0x12 == 0x12 else "refused" if flags & 0x04 else "unanswered")
        ready, _, _ = select.select([raw], [], [], 0)

print(json.dumps({t["name"]: {**{k: t[k] for k in ("sent", "listening", "refused", "unanswered")}, "longestGapMs": longest_gap_ms(t["answers"])} for t in targets}))
