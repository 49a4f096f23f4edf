#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Raw TFTP packets for test/regress/tftp.sh: what real clients never send.

usage: tftpc.py PORT ask PACKET        send PACKET (a Python bytes expression),
                                       print the first answer in one line
       tftpc.py PORT stall NAME        RRQ, never ACK: count resends of
                                       DATA 1 until hvd gives up
       tftpc.py PORT again NAME        RRQ twice, 0.7 s apart: one transfer
       tftpc.py PORT wrongtid NAME     a stranger's ERROR to the transfer's
                                       port must not end it; prints sha256
       tftpc.py PORT hold PID PATH NAME...
                                       one stalled transfer per NAME; prints
                                       how many fds of PID open PATH while
                                       they run and after they time out
All answers come with a 5 s limit; the host is 127.0.0.1.
"""
import hashlib
import os
import socket
import struct
import sys
import time

HOST = "127.0.0.1"


def sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.settimeout(5)
    return s


def describe(pkt):
    if len(pkt) < 2:
        return "runt %r" % pkt
    op = struct.unpack("!H", pkt[:2])[0]
    if op == 5:
        code = struct.unpack("!H", pkt[2:4])[0]
        return "ERROR %d %s" % (code, pkt[4:].rstrip(b"\0").decode("ascii", "replace"))
    if op == 6:
        f = pkt[2:].split(b"\0")[:-1]
        return "OACK " + " ".join("%s=%s" % (f[i].decode(), f[i + 1].decode())
                                  for i in range(0, len(f) - 1, 2))
    if op == 3:
        return "DATA %d %d" % (struct.unpack("!H", pkt[2:4])[0], len(pkt) - 4)
    return "opcode %d" % op


def rrq(name, opts=()):
    p = b"\0\1" + name.encode() + b"\0octet\0"
    for k, v in opts:
        p += k.encode() + b"\0" + v.encode() + b"\0"
    return p


def ask(port, literal):
    s = sock()
    s.settimeout(1)
    # The test's own expressions, such as b"\\0\\1f\\0" + b"9" * 600.
    s.sendto(eval(literal, {"__builtins__": {}}), (HOST, port))
    try:
        pkt, peer = s.recvfrom(70000)
    except socket.timeout:
        print("silence")
        return
    print(describe(pkt))
    # Leave no transfer behind: answer an OACK or DATA with an error.
    if pkt[:2] in (b"\0\3", b"\0\6"):
        s.sendto(b"\0\5\0\0test done\0", peer)


def stall(port, name):
    s = sock()
    s.sendto(rrq(name), (HOST, port))
    first, peer = s.recvfrom(70000)
    resends, t0 = 0, time.monotonic()
    while True:
        pkt, p = s.recvfrom(70000)
        if p != peer:
            print("answer from another port")
            return
        if pkt[:4] == b"\0\3\0\1":
            resends += 1
            continue
        print("resent %d then %s after %.1f s" % (resends, describe(pkt),
                                                  time.monotonic() - t0))
        return


def again(port, name):
    """With an option, so the first answer is an OACK, which hvd never
    resends on its own (atftp aborts on a second one)."""
    s = sock()
    s.sendto(rrq(name, [("blksize", "512")]), (HOST, port))
    a, pa = s.recvfrom(70000)
    s.settimeout(0.7)
    try:
        s.recvfrom(70000)
        quiet = "resent on a timer"
    except socket.timeout:
        quiet = "nothing for 0.7 s"
    s.settimeout(5)
    s.sendto(rrq(name, [("blksize", "512")]), (HOST, port))
    b, pb = s.recvfrom(70000)
    print("%s, %s, %s, %s" % (describe(a), quiet, describe(b),
                              "same TID" if pa == pb else "another TID"))
    s.sendto(b"\0\5\0\0test done\0", pa)


def fetch(s, peer, first):
    """Completes a lockstep transfer whose first DATA is in hand."""
    h, block, pkt = hashlib.sha256(), 1, first
    while True:
        h.update(pkt[4:])
        s.sendto(b"\0\4" + struct.pack("!H", block & 0xffff), peer)
        if len(pkt) - 4 < 512:
            return h.hexdigest()
        block += 1
        while True:
            pkt, p = s.recvfrom(70000)
            if p == peer and pkt[:4] == b"\0\3" + struct.pack("!H", block & 0xffff):
                break


def wrongtid(port, name):
    s = sock()
    s.sendto(rrq(name), (HOST, port))
    first, peer = s.recvfrom(70000)
    stranger = sock()
    stranger.sendto(b"\0\5\0\0I am not your client\0", peer)
    stranger.sendto(b"\0\4\0\1", peer)
    print(fetch(s, peer, first))


def fds(pid, path):
    real, n = os.path.realpath(path), 0
    for fd in os.listdir("/proc/%s/fd" % pid):
        try:
            if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == real:
                n += 1
        except OSError:
            pass
    return n


def hold(port, pid, path, names):
    socks = []
    for name in names:
        s = sock()
        s.sendto(rrq(name, [("blksize", "1468")]), (HOST, port))
        socks.append(s)
    for s in socks:
        s.recvfrom(70000)       # the OACK: never acknowledged
    during = fds(pid, path)
    for s in socks:
        while s.recvfrom(70000)[0][:2] != b"\0\5":
            pass
    time.sleep(0.2)
    print("%d transfers, %d open during, %d after" % (len(names), during,
                                                      fds(pid, path)))


def main():
    port, cmd, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if cmd == "ask":
        ask(port, args[0])
    elif cmd == "stall":
        stall(port, args[0])
    elif cmd == "again":
        again(port, args[0])
    elif cmd == "wrongtid":
        wrongtid(port, args[0])
    elif cmd == "hold":
        hold(port, args[0], args[1], args[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
