#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Types into a lab machine's serial console: QEMU's unix socket for com1.

    console.py SOCKET send TEXT   type TEXT and Enter, a few bytes at a time
    console.py SOCKET attach      relay this terminal to the console; Ctrl-]
                                  detaches

The machine's output is also written to its serial log (QEMU's logfile=),
whether or not anyone is attached.  Xen owns com1 and hands serial input to
dom0's console (hvc0) after boot, so what is typed here reaches the shell
busybox init runs there.  Xen reads the UART into a small ring, so "send"
types in chunks of a few bytes with a pause between them, and waits a
moment before it hangs up: QEMU drops what it has not yet read when the
peer goes away.
"""
import os
import select
import socket
import sys
import termios
import time
import tty

CHUNK = 8
PAUSE = 0.03


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        sys.exit(f"console: {path}: {e.strerror}")
    return s


def drain(s):
    # QEMU copies the guest's output to the peer as well: read and drop it
    # so that its socket buffer never fills.
    while select.select([s], [], [], 0)[0]:
        if not s.recv(65536):
            return False
    return True


def send(path, text):
    s = connect(path)
    data = text.encode() + b"\r"
    for i in range(0, len(data), CHUNK):
        s.sendall(data[i:i + CHUNK])
        drain(s)
        time.sleep(PAUSE)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        drain(s)
        time.sleep(0.05)
    s.close()


def attach(path):
    s = connect(path)
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd) if os.isatty(fd) else None
    if saved:
        tty.setraw(fd)
        os.write(1, b"console: attached; Ctrl-] detaches\r\n")
    try:
        while True:
            r = select.select([s, fd], [], [])[0]
            if s in r:
                b = s.recv(65536)
                if not b:
                    break
                os.write(1, b)
            if fd in r:
                b = os.read(fd, 1024)
                if not b or b"\x1d" in b:
                    break
                s.sendall(b)
    finally:
        if saved:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
            os.write(1, b"\r\nconsole: detached\r\n")
        s.close()


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[1] == "send":
        send(a[0], a[2])
    elif len(a) == 2 and a[1] == "attach":
        attach(a[0])
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main()
