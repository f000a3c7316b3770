"""Test-anything style checks shared by the client test scripts.

    from checks import check, finish
    check(1 + 1 == 2, "arithmetic works")
    finish()          # prints the summary; exits 1 if any check failed
"""
import sys
import time

_started = time.monotonic()
_failures = []
_count = 0


def check(condition, what, got=None):
    """Prints "ok - what" or "FAIL - what" (with what was got) and records it."""
    global _count
    _count += 1
    if condition:
        print("ok   - " + what)
    else:
        _failures.append(what)
        print("FAIL - " + what + ("" if got is None else "\n       got: %r" % (got,)))


def finish():
    """The summary line, the failed checks again, and the exit status."""
    print("# %d checks, %d failed, %.1f s" % (_count, len(_failures), time.monotonic() - _started))
    if _failures:
        for failure in _failures:
            print("FAILED: " + failure)
        sys.exit(1)
