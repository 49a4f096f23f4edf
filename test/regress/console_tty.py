# SPDX-License-Identifier: AGPL-3.0-or-later
"""hvctl vm console VM --attach on a terminal, for regress/console.sh.

usage: console_tty.py HVCTL VM OUT escape|term

Runs `HVCTL vm console VM --attach; echo rc=$?; stty -a` in bash on a pty
this script holds, types "hello" and CR once hvctl says it is connected,
waits for the guest's answer, then ends the session with Ctrl-] (escape)
or by sending hvctl SIGTERM (term), and writes everything the terminal
showed to OUT: hvctl's output, its exit status, and the terminal's modes
after it.
"""
import os
import pty
import select
import signal
import sys
import time

hvctl, vm, out, how = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("bash", ["bash", "-c",
                       '"$0" vm console "$1" --attach; echo "rc=$?"; stty -a',
                       hvctl, vm])
buf = b""


def until(pat, secs):
    global buf
    end = time.time() + secs
    while pat not in buf and time.time() < end:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                return


def children(ppid):
    for p in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError, ValueError):
            continue
        if int(st[1]) == ppid:
            yield int(p)


until(b"Ctrl-] detaches.", 10)
time.sleep(0.5)
os.write(fd, b"hello\r")
until(b"answer: hello", 10)
if how == "escape":
    os.write(fd, b"\x1d")
else:
    for c in children(pid):
        os.kill(c, signal.SIGTERM)
until(b"speed", 10)
until(b"never", 1.0)
with open(out, "wb") as f:
    f.write(buf)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
