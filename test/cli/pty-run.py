#!/usr/bin/env python3
"""Runs a command on a real pseudo-terminal of a given size (0 columns is
what a serial console, `script` or some CI runners report) and says what
happened, as one JSON object on stdout:

  pty-run.py COLS ROWS SIGNAL_AFTER_S SIGNAL LIMIT_S -- COMMAND ARGS...

SIGNAL (TERM, INT or -) is sent to the command SIGNAL_AFTER_S seconds after
it started. Output is read (and counted) until the command exits, at most
LIMIT_S seconds, after which it is killed (killed: true). `restored` says
whether the terminal's line discipline (ICANON, ECHO) is back to what it
was before the command ran. With PTY_RESIZE=SECONDS:COLS in the environment
the terminal is resized to COLS columns that long after the start (the
kernel sends the command SIGWINCH).
"""
import fcntl
import json
import os
import select
import signal
import struct
import sys
import termios
import time

cols, rows, signal_after, signal_name, limit = sys.argv[1:6]
command = sys.argv[sys.argv.index('--') + 1:]
cols, rows, signal_after, limit = int(cols), int(rows), float(signal_after), float(limit)
TAIL = 4096
resize = os.environ.get('PTY_RESIZE')
resize_after, resize_cols = (float(resize.split(':')[0]), int(resize.split(':')[1])) if resize else (None, None)

master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
before = termios.tcgetattr(slave)
started = time.monotonic()
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(master)
    os.close(slave)
    os.execvp(command[0], command)

total = 0
tail = b''
signalled_at = None
status = None
killed = False
while True:
    now = time.monotonic()
    if signalled_at is None and signal_name != '-' and now - started >= signal_after:
        os.kill(pid, getattr(signal, 'SIG' + signal_name))
        signalled_at = now
    if resize_after is not None and now - started >= resize_after:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', rows, resize_cols, 0, 0))
        resize_after = None
    if status is None and now - started > limit:
        os.kill(pid, signal.SIGKILL)
        killed = True
        _, status = os.waitpid(pid, 0)
        exited_at = time.monotonic()
    if status is None:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = code
            exited_at = now
    ready, _, _ = select.select([master], [], [], 0.05)
    if ready:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            chunk = b''
        total += len(chunk)
        tail = (tail + chunk)[-TAIL:]
        continue
    if status is not None:
        break

after = termios.tcgetattr(slave)
lflags = termios.ICANON | termios.ECHO
print(json.dumps({
    'bytes': total,
    'tail': tail.decode('utf-8', 'replace'),
    'exitCode': os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
    'signal': os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
    'killed': killed,
    'ranMs': round((exited_at - started) * 1000),
    'afterSignalMs': None if signalled_at is None else round((exited_at - signalled_at) * 1000),
    'restored': (before[3] & lflags) == (after[3] & lflags),
}))
