"""Time from the command to its one-line error for a bad structure file.

A user who points a command at a broken file should hear of it at once. Each
command that reads structures is run on a file with a NaN position; the time
to its exit (wall seconds, the median of ``--repeat`` runs) is compared with

- a bad flag (argparse refuses it before any library loads: the floor), and
- the same bad file with torch imported first (the cost of reading after the
  libraries load, as the commands did before they read first).

    python benchmarks/time_to_error.py [--repeat 5]

Run on a quiet machine; the README of ``benchmarks/`` has the numbers.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAD_FILE = "2\nProperties=species:S:1:pos:R:3 mbe_parent=0\nH 0 0 0\nH 0 0 nan\n"
COMMANDS = {
    "analyze": "analyze bad.xyz -o out",
    "subclusters": "subclusters bad.xyz -o s.xyz",
    "label": "label bad.xyz -o l.xyz",
    "fragments": "fragments bad.xyz -o f.xyz",
    "sample": "sample bad.xyz --protocol pairs --size 2 -n 1 -o c.xyz",
}
RUN = (
    "import sys; {prelude}from metatrain_mbe.interface.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


def seconds(argv: list[str], folder: Path, prelude: str, repeat: int) -> float:
    """Median wall time of ``mtt-mbe ARGV`` (which must exit 2) in ``folder``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", RUN.format(prelude=prelude), *argv],
            cwd=folder,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
        assert done.returncode == 2, done.stderr
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "bad.xyz").write_text(BAD_FILE)
        print("| command | bad flag (s) | bad file (s) | bad file, torch first (s) | ratio |")
        print("|---|---|---|---|---|")
        for name, line in COMMANDS.items():
            argv = line.split()
            flag = seconds([name, "--no-such-flag"], folder, "", repeat)
            bad = seconds(argv, folder, "", repeat)
            eager = seconds(argv, folder, "import torch; ", repeat)
            print(f"| {name} | {flag:.2f} | {bad:.2f} | {eager:.2f} | {eager / bad:.1f} |")


if __name__ == "__main__":
    main()
