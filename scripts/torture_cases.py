"""What the two torture drivers (http-torture.py, tcp-torture.py) share: run
each case, then a normal GET, and print one line per case."""


def run_cases(label, cases, only, normal_get):
    """Runs every (name, case) of `cases` whose name is in `only` (all when it
    is empty); a case is a function returning (ok, detail). After each, a
    normal GET must be served: `normal_get()` returns (ok, detail) too. A case
    that raises fails and the others still run. Prints `PASS name: detail` or
    `FAIL name: detail` per case and `LABEL: N passed, M failed`; returns the
    number that failed."""
    passed = failed = 0
    for name, run in cases:
        if only and name not in only:
            continue
        ok, detail = attempt(run)
        after_ok, after_detail = attempt(normal_get)
        if not after_ok:
            ok = False
            detail += f"; the normal GET after it: {after_detail}"
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
        if ok:
            passed += 1
        else:
            failed += 1
    print(f"{label}: {passed} passed, {failed} failed")
    return failed


def attempt(function):
    """function()'s (ok, detail), or a failure saying what it raised."""
    try:
        return function()
    except Exception as error:
        return False, f"raised {type(error).__name__}: {error}"
