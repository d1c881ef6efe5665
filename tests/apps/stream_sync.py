"""Steps that a streaming test app and its test take in turn, through files in a directory
the test names (tests/e2e/gthread_stream.rs): the app produces chunk N only once the test
created `go-N`, which it does after it read chunk N-1. A server that held chunk N-1 back
until more came would never see `go-N`: the app gives up after WAIT_S and says so in
the stream, and the test fails on the missing chunk instead of hanging."""

import os
import time

WAIT_S = 30.0


def wait_go(directory, n):
    """Waits until the test created `go-<n>` in `directory`; False after WAIT_S."""
    path = os.path.join(directory, "go-%d" % n)
    end = time.monotonic() + WAIT_S
    while not os.path.exists(path):
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def record(directory, name, text):
    """Appends a line to `name` in `directory` (what the app did, for the test to count)."""
    with open(os.path.join(directory, name), "a") as f:
        f.write(text + "\n")


def lines(directory, name):
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read().splitlines()
    except OSError:
        return []
