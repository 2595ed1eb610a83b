"""Check the demo's size and speed targets as ratios measured within one run.

    python benchmarks/demo_targets.py [out/demo.json]

Runs ``course demo --json`` unless a JSON file from such a run is given, then checks that the
dynamic-int8 teacher is at least 1.5x smaller than fp32 and faster at batch 32. Exit 1 if not.
Timing targets are not unit tests: they depend on the machine and its load.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

TARGETS = {"size_x": 1.5, "speedup_b32": 1.0}


def main(argv: list[str]) -> int:
    if argv:
        payload = json.loads(Path(argv[0]).read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "demo.json"
            subprocess.run([sys.executable, "-m", "course", "demo", "--quiet", "--json", str(out)], check=True)
            payload = json.loads(out.read_text())
    int8 = payload["models"]["int8"]
    failed = [f"{k} = {int8[k]:.2f} (target > {v})" for k, v in TARGETS.items() if not int8[k] > v]
    print("int8 vs fp32: " + ", ".join(f"{k} {int8[k]:.2f}" for k in TARGETS))
    print("FAILED: " + "; ".join(failed) if failed else "all targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
