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
