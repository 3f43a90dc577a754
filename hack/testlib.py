"""What the Python test tiers (hack/pods_test.py, hack/cluster_test.py) share."""

import time
import unittest


def wait_until(what, seconds, fn):
    """Polls fn until it returns something truthy; fails with what it last saw."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # the thing may not answer yet
            last = e
        time.sleep(0.5)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (seconds, what, last))


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 for programs a test starts next, from
    below the kernel's ephemeral range: a port-0 bind hands out an ephemeral port,
    which any outgoing connection may take as its source port before the program
    binds it (as crates/monero-testkit's free_port explains). The start depends on
    the PID, so test processes running side by side walk different stretches."""
    import os
    import socket
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            high = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        high = 32768
    low = 10000 if high > 11000 else 61000
    high = high if high > 11000 else 65000
    span = high - low
    global _next_port
    if _next_port is None:
        _next_port = (os.getpid() * 613 + 7919) % span
    out = []
    for _ in range(span):
        port = low + _next_port % span
        _next_port += 1  # never the same port twice in one process
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        out.append(port)
        if len(out) == n:
            return out
    raise RuntimeError("no %d free loopback ports in %d..%d" % (n, low, high))


_next_port = None


def run_suite(name, cases, names, module):
    """Runs the cases (or the tests named on the command line) and prints the closing
    line "NAME: N passed, N failed, N skipped"; returns the exit status."""
    loader = unittest.defaultTestLoader
    if names:
        suite = loader.loadTestsFromNames(names, module)
    else:
        suite = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in cases)
    total = suite.countTestCases()
    result = unittest.TextTestRunner(verbosity=2, resultclass=_Counting).run(suite)
    skipped = len(result.skipped)
    # A test whose class setup failed never ran: it counts as failed, not as passed.
    failed = total - result.passed - skipped
    print("%s: %d passed, %d failed, %d skipped" % (name, result.passed, failed, skipped))
    return 0 if failed == 0 and result.wasSuccessful() else 1


class _Counting(unittest.TextTestResult):
    """Counts the tests that passed, so that a failed class setup cannot make the
    closing line's numbers go negative."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1
