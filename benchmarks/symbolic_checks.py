"""Time every registered symbolic check and print a table; target: all together under 30 s.

Usage: .venv/bin/python benchmarks/symbolic_checks.py
"""

import time

from vghlib.symbolic import all_checks

TARGET_S = 30.0


def main() -> int:
    rows, total, failed = [], 0.0, []
    for name, check in sorted(all_checks().items()):
        t0 = time.perf_counter()
        res = check()
        dt = time.perf_counter() - t0
        total += dt
        negative = bool(res.details.get("negative_control"))
        verdict = (
            ("rejects" if not res.passed else "ACCEPTS")
            if negative
            else ("holds" if res.passed else "FAILS")
        )
        rows.append((name, verdict, dt))
        if verdict in ("FAILS", "ACCEPTS"):
            failed.append(name)
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'check':<{width}}  {'verdict':>7}  {'seconds':>8}")
    # 'rejects' marks a negative control (a deliberately false statement) that was rejected.
    for name, verdict, dt in rows:
        print(f"{name:<{width}}  {verdict:>7}  {dt:8.2f}")
    print(
        f"{'total':<{width}}  {'':>7}  {total:8.2f}   (target < {TARGET_S:.0f} s: "
        f"{'met' if total < TARGET_S else 'MISSED'})"
    )
    if failed:
        print("these checks gave the wrong verdict:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
