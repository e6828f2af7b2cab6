"""CPU time to compile 200 job schemas with gokogeri generate (load, check, render; no disk writes).

    python bench/codegen_bench.py [N]

The 200 schemas are the four examples in schemas/ repeated under distinct
names and classes. Prints CPU seconds for the whole run and for each phase.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from gokogeri.codegen.loader import load
from gokogeri.codegen.render import render_package

ROOT = Path(__file__).resolve().parents[1]


def main(n: int = 200) -> None:
    examples = sorted((ROOT / "schemas").glob("*.json"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        # Example schemas $ref files in schemas/shared/.
        shutil.copytree(ROOT / "schemas" / "shared", out / "shared")
        for i in range(n):
            src = examples[i % len(examples)]
            doc = json.loads(src.read_text())
            last = doc["x-gokogeri"]["class"].split("::")[-1].removesuffix("Job")
            doc["x-gokogeri"]["class"] = f"Bench::{last}{i:03d}Job"
            (out / f"{src.stem}_{i:03d}.json").write_text(json.dumps(doc))
        load([out])  # warm imports, the meta-schema validator and the template cache
        t0 = time.process_time()
        pkg = load([out])
        t1 = time.process_time()
        files = render_package(pkg)
        t2 = time.process_time()
    lines = sum(text.count("\n") for text in files.values())
    print(f"schemas: {len(pkg.jobs)}  files: {len(files)}  lines: {lines}")
    print(f"load+check: {t1 - t0:.3f} s CPU  render: {t2 - t1:.3f} s CPU")
    print(f"total: {t2 - t0:.3f} s CPU")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
