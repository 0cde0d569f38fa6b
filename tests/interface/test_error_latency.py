"""A bad input file is reported before torch (or PySCF) loads: the commands
that read structures read them first, so the one line comes in about a
second (``benchmarks/time_to_error.py`` measures it)."""

import subprocess
import sys

import pytest

BAD_FILE = "2\nProperties=species:S:1:pos:R:3 mbe_parent=0\nH 0 0 0\nH 0 0 nan\n"

COMMANDS = [
    "analyze bad.xyz -o out",
    "subclusters bad.xyz -o s.xyz",
    "label bad.xyz -o l.xyz",
    "fragments bad.xyz -o f.xyz",
    "sample bad.xyz --protocol pairs --size 2 -n 1 -o c.xyz",
]

PROBE = """
import sys
from metatrain_mbe.interface.cli import main
code = main(sys.argv[1:])
print(code, sorted(m for m in ("torch", "pyscf", "metatrain") if m in sys.modules))
"""


@pytest.mark.parametrize("line", COMMANDS)
def test_a_bad_file_is_reported_before_torch_loads(tmp_path, line):
    (tmp_path / "bad.xyz").write_text(BAD_FILE)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *line.split()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.split("\n")[0] == "2 []", (done.stdout, done.stderr)
    assert "field 'positions' is not finite" in done.stderr
