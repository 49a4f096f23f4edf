#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""A stand-in for systemd's service watchdog, for tests only.

systemd is not PID 1 on the test machines (a debootstrap chroot, CI), so
it cannot supervise hvd there.  This is the smallest faithful copy of what
systemd does for a Type=notify unit with WatchdogSec= and
Restart=on-failure, from systemd.service(5), sd_notify(3),
sd_watchdog_enabled(3) and src/core/service.c:

  - it binds a datagram socket and passes it in NOTIFY_SOCKET; with
    --watchdog-usec it also sets WATCHDOG_USEC and WATCHDOG_PID, the PID of
    the service itself, which is why it forks and execs the service;
  - it accepts notifications only from the main PID (NotifyAccess=main, the
    default under WatchdogSec=), read from SCM_CREDENTIALS;
  - the watchdog is armed when start-up completes (READY=1) and re-armed by
    every WATCHDOG=1; STOPPING=1 disarms it; WATCHDOG=trigger fires it;
  - when it fires: SIGABRT (WatchdogSignal=) followed by SIGCONT, as
    systemd's kill_and_sigcont() does, then SIGKILL if the service is still
    there after --abort-timeout (TimeoutAbortSec=);
  - Restart=on-failure: a watchdog kill, a non-zero exit or an unclean
    signal restarts the service after --restart-sec (RestartSec=); exit 0
    or SIGHUP/SIGINT/SIGTERM/SIGPIPE end supervision; more than 5 starts in
    10 s is the start limit (StartLimitBurst=, StartLimitIntervalSec=);
  - SIGTERM or SIGINT to the supervisor stops the service: SIGTERM and
    SIGCONT, then SIGKILL after --stop-timeout (TimeoutStopSec=).  The
    supervisor then exits with the service's status (128+N for signal N).

Not modelled: TimeoutStartSec=, WATCHDOG_USEC= sent by the service, reload
and start-up timeouts, control processes, cgroups.

Every event is one line on stdout, "SECONDS EVENT pid=PID ...", seconds on
the monotonic clock since the supervisor started.  The service's stdin is
/dev/null; its stdout and stderr go to the supervisor's stderr.
"""

import argparse
import os
import select
import signal
import socket
import struct
import sys
import time

CLEAN_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE}
START_LIMIT_BURST = 5
START_LIMIT_INTERVAL = 10.0
EXIT_EXEC = 203  # systemd's exit status when the exec itself fails

T0 = time.monotonic()


def log(event, **kv):
    fields = " ".join(f"{k}={v}" for k, v in kv.items())
    print(f"{time.monotonic() - T0:.3f} {event} {fields}".rstrip(), flush=True)


def signame(sig):
    return signal.Signals(sig).name


class Service:
    """One run of the service, from fork to reaping."""

    def __init__(self, pid):
        self.pid = pid
        self.ready = False
        self.stopping = False
        self.watchdog_at = None  # monotonic deadline, None when disarmed
        self.kill_at = None  # when SIGKILL follows the signal sent
        self.result = None  # "watchdog" once the watchdog fired


def spawn(argv, notify_path, watchdog_usec):
    pid = os.fork()
    if pid == 0:
        try:
            # exec keeps ignored signals ignored; systemd resets them.
            for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT,
                      signal.SIGTERM, signal.SIGCHLD):
                signal.signal(s, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            env = dict(os.environ)
            env["NOTIFY_SOCKET"] = notify_path
            env.pop("WATCHDOG_USEC", None)
            env.pop("WATCHDOG_PID", None)
            if watchdog_usec:
                env["WATCHDOG_USEC"] = str(watchdog_usec)
                env["WATCHDOG_PID"] = str(os.getpid())
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(2, 1)
            os.execvpe(argv[0], argv, env)
        except BaseException as e:  # noqa: BLE001 - the child must not return
            print(f"watchdog_supervisor: exec {argv[0]}: {e}", file=sys.stderr)
        os._exit(EXIT_EXEC)
    log("start", pid=pid)
    return Service(pid)


def send(svc, sig):
    try:
        os.kill(svc.pid, sig)
        if sig not in (signal.SIGKILL, signal.SIGCONT):
            os.kill(svc.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def on_notify(svc, data, sender, watchdog_usec, now):
    text = data.decode(errors="replace")
    if svc is None or sender != svc.pid:
        log("notify-refused", pid=sender,
            main=svc.pid if svc else "none", msg=repr(text))
        return
    log("notify", pid=sender, msg=text.replace("\n", " ").strip())
    tags = text.split("\n")
    if svc.stopping or svc.result:
        return
    if "READY=1" in tags and not svc.ready:
        svc.ready = True
        if watchdog_usec:
            svc.watchdog_at = now + watchdog_usec / 1e6
    if "WATCHDOG=1" in tags and watchdog_usec:
        svc.watchdog_at = now + watchdog_usec / 1e6
    if "WATCHDOG=trigger" in tags:
        svc.watchdog_at = now
    if "STOPPING=1" in tags:
        svc.watchdog_at = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--notify-socket", required=True)
    ap.add_argument("--watchdog-usec", type=int, default=0)
    ap.add_argument("--abort-timeout", type=float, default=90.0)
    ap.add_argument("--stop-timeout", type=float, default=90.0)
    ap.add_argument("--restart-sec", type=float, default=0.1)
    ap.add_argument("argv", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
    if not argv:
        ap.error("give the service's command after --")

    # Signals arrive through a pipe, so one select() waits for everything.
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
    stop_requested = []
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda n, f: stop_requested.append(n))
    signal.signal(signal.SIGCHLD, lambda n, f: None)

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    try:
        os.unlink(a.notify_socket)
    except FileNotFoundError:
        pass
    sock.bind(a.notify_socket)
    creds_len = socket.CMSG_SPACE(struct.calcsize("3i"))

    starts = []
    svc = None
    restart_at = time.monotonic()
    stopping_all = False
    status = 0
    while True:
        now = time.monotonic()
        if svc is None and restart_at is not None and now >= restart_at:
            starts = [t for t in starts if now - t < START_LIMIT_INTERVAL]
            if len(starts) >= START_LIMIT_BURST:
                log("start-limit-hit", starts=len(starts),
                    interval=START_LIMIT_INTERVAL)
                return 1
            starts.append(now)
            svc = spawn(argv, a.notify_socket, a.watchdog_usec)
            restart_at = None

        if stop_requested and not stopping_all:
            stopping_all = True
            log("stop", signal=signame(stop_requested[0]),
                pid=svc.pid if svc else "none")
            if svc is None:
                return 0
            svc.watchdog_at = None
            svc.stopping = True
            send(svc, signal.SIGTERM)
            svc.kill_at = now + a.stop_timeout

        if svc and svc.watchdog_at is not None and now >= svc.watchdog_at:
            log("watchdog-timeout", pid=svc.pid,
                limit_ms=a.watchdog_usec // 1000)
            svc.watchdog_at = None
            svc.result = "watchdog"
            log("kill", pid=svc.pid, signal="SIGABRT")
            send(svc, signal.SIGABRT)
            svc.kill_at = now + a.abort_timeout
        if svc and svc.kill_at is not None and now >= svc.kill_at:
            log("kill", pid=svc.pid, signal="SIGKILL", reason="timed-out")
            send(svc, signal.SIGKILL)
            svc.kill_at = None

        if svc:
            pid, ws = os.waitpid(svc.pid, os.WNOHANG)
            if pid == svc.pid:
                if os.WIFSIGNALED(ws):
                    sig = os.WTERMSIG(ws)
                    how = {"signal": signame(sig)}
                    clean = sig in CLEAN_SIGNALS
                    status = 128 + sig
                else:
                    status = os.WEXITSTATUS(ws)
                    how = {"status": status}
                    clean = status == 0
                result = svc.result or ("success" if clean else "failure")
                log("exit", pid=svc.pid, **how, result=result)
                svc = None
                if stopping_all:
                    return status
                if result == "success":
                    log("inactive")
                    return 0
                log("restart", after=a.restart_sec)
                restart_at = now + a.restart_sec
                continue

        deadlines = [t for t in (restart_at,
                                 svc and svc.watchdog_at,
                                 svc and svc.kill_at) if t]
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        # A SIGCHLD after waitpid() above still wakes select(): the signal
        # handler's byte is already in the pipe.
        r, _, _ = select.select([sock, rfd], [], [], timeout)
        if rfd in r:
            try:
                os.read(rfd, 512)
            except BlockingIOError:
                pass
        if sock in r:
            data, anc, _, _ = sock.recvmsg(4096, creds_len)
            sender = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    sender = struct.unpack("3i", cdata[:12])[0]
            on_notify(svc, data, sender, a.watchdog_usec, time.monotonic())


if __name__ == "__main__":
    sys.exit(main())
