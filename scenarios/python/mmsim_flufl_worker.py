"""flufl-lock-stress's worker: rounds of flufl.lock's Lock on the shared mount.

Each round: lock(), append `enter WHO N` to the shared log, hold, append
`exit WHO N`, unlock(). It is lock-worker's loop (scenarios/src/lock_worker.rs)
written against the real library, unmodified, so the same oracles judge both:
mmsim's `exec` reads the enter and exit lines as the critical section's marks
(docs/real-programs.md).
"""

import argparse
import os
import socket
import time
from datetime import timedelta

from flufl.lock import Lock, NotLockedError


def append(path, line):
    with open(path, "a") as log:
        log.write(line + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lock", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--lifetime-s", type=float, default=15.0)
    ap.add_argument("--hold-ms", type=int, default=0)
    ap.add_argument("--think-ms", type=int, default=0)
    args = ap.parse_args()
    who = "{}.{}".format(socket.gethostname(), os.getpid())
    lock = Lock(args.lock, lifetime=timedelta(seconds=args.lifetime_s))
    for round in range(args.rounds):
        lock.lock()
        append(args.log, "enter {} {}".format(who, round))
        if args.hold_ms:
            time.sleep(args.hold_ms / 1000)
        append(args.log, "exit {} {}".format(who, round))
        try:
            lock.unlock()
        except NotLockedError:
            print("{}: lock lost before unlock".format(who))
        if args.think_ms:
            time.sleep(args.think_ms / 1000)


if __name__ == "__main__":
    main()
