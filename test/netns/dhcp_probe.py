#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""DHCP packets busybox udhcpc cannot send, for test/netns/dhcp.sh.

  dhcp_probe.py proxy-request IFACE SERVER CIADDR MAC ARCH
      A PXE client that already has an address asks the proxy on port 4011
      (PXE 2.1) and prints the ACK: "ack file=... siaddr=... opt60=...".
  dhcp_probe.py reboot-request IFACE MAC IP
      INIT-REBOOT: broadcasts a REQUEST for IP and prints "nak" or "ack IP".
  dhcp_probe.py malformed SERVER
      Sends the fixed set of malformed datagrams to SERVER:67; prints the count.
  dhcp_probe.py flood SERVER N
      Sends N random datagrams to SERVER:67 and SERVER:4011.
"""
import random
import socket
import struct
import sys

COOKIE = bytes([99, 130, 83, 99])


def packet(opts, mac, ciaddr="0.0.0.0", op=1, htype=1, hlen=6, file=b""):
    hdr = struct.pack("!BBBBIHH", op, htype, hlen, 0, random.getrandbits(32), 0, 0)
    hdr += socket.inet_aton(ciaddr) + bytes(12)
    hdr += bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")
    hdr += bytes(64) + file.ljust(128, b"\0")
    return hdr + COOKIE + opts


def pxe_opts(msgtype, arch):
    vc = b"PXEClient:Arch:%05d:UNDI:003016" % arch
    return (bytes([53, 1, msgtype, 60, len(vc)]) + vc +
            bytes([93, 2]) + struct.pack("!H", arch) + b"\xff")


def parse_reply(data):
    if len(data) < 240 or data[236:240] != COOKIE:
        return None
    out = {"yiaddr": socket.inet_ntoa(data[16:20]),
           "siaddr": socket.inet_ntoa(data[20:24]),
           "file": data[108:236].split(b"\0")[0].decode()}
    p = 240
    while p < len(data) and data[p] != 255:
        if data[p] == 0:
            p += 1
            continue
        code, n = data[p], data[p + 1]
        out[code] = data[p + 2:p + 2 + n]
        p += 2 + n
    return out


def client_socket(iface):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    s.bind(("", 68))
    s.settimeout(3)
    return s


def receive(s, mac):
    want = bytes.fromhex(mac.replace(":", ""))
    while True:
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            return None
        r = parse_reply(data)
        if r and data[28:34] == want:
            return r


def main():
    cmd = sys.argv[1]
    if cmd == "proxy-request":
        iface, server, me, mac, arch = sys.argv[2:7]
        s = client_socket(iface)
        s.sendto(packet(pxe_opts(3, int(arch)), mac, ciaddr=me), (server, 4011))
        r = receive(s, mac)
        if r is None:
            print("no answer")
            return
        kind = {5: "ack", 2: "offer", 6: "nak"}.get(r.get(53, b"\0")[0], "?")
        print("%s yiaddr=%s siaddr=%s file=%s opt60=%s" % (
            kind, r["yiaddr"], r["siaddr"], r["file"],
            r.get(60, b"").decode()))
    elif cmd == "reboot-request":
        iface, mac, ip = sys.argv[2:5]
        s = client_socket(iface)
        opts = bytes([53, 1, 3, 50, 4]) + socket.inet_aton(ip) + b"\xff"
        s.sendto(packet(opts, mac), ("255.255.255.255", 67))
        r = receive(s, mac)
        if r is None:
            print("no answer")
        elif r.get(53) == b"\x06":
            print("nak %s" % r.get(56, b"").decode())
        else:
            print("ack %s" % r["yiaddr"])
    elif cmd == "malformed":
        server = sys.argv[2]
        mac = "52:54:00:66:66:66"
        good = pxe_opts(1, 0)
        bad = [
            packet(good, mac)[:100],                              # truncated header
            packet(good, mac)[:236] + b"\x63\x82\x53\x00" + good,  # bad cookie
            packet(b"\x35\x01\x01\x3c\xc8PXEClient", mac),        # option overflow
            packet(b"\x35\x01\x01\x3c\x09PXEClient", mac),        # no end option
            packet(b"\x34\x01\x01\x35\x01\x01\xff", mac),          # overloaded file, no end
            packet(b"\x35\x01\x01\x35\x01\x03\xff", mac),          # option 53 twice
            packet(good, mac, htype=6),                           # not Ethernet
            packet(good, mac, op=2),                              # a reply
            packet(b"\x35\x01\x63\xff", mac),                     # message type 99
            packet(good, mac) + bytes(1400),                      # over 1472 bytes
            packet(good, "00:00:00:00:00:00"),                    # no MAC
            packet(b"\x35\x01\x01\x5d\x03\x00\x00\x00\xff", mac),  # option 93, 3 bytes
        ]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for b in bad:
            s.sendto(b, (server, 67))
        print(len(bad))
    elif cmd == "flood":
        server, n = sys.argv[2], int(sys.argv[3])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rnd = random.Random(7)
        base = packet(pxe_opts(1, 0), "52:54:00:77:77:77")
        for i in range(n):
            if i % 2:
                b = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 600)))
            else:
                b = bytearray(base)
                for _ in range(rnd.randrange(1, 8)):
                    b[rnd.randrange(len(b))] = rnd.getrandbits(8)
                b = bytes(b)
            s.sendto(b, (server, 67 if i % 3 else 4011))
        print(n)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
