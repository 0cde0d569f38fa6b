"""A file whose header announces more atoms than it holds, against ``mtt-mbe``.

ase's extended-XYZ reader reads one line per announced atom, so a first line of
``999999999999`` kept every reader busy for ever; the command must instead end
at once in one stderr line naming the file, frame and line, exit with code 2,
and leave no output folder. Run in a fresh process, with a timeout, so that a
hang fails the test instead of stalling the suite.
"""

import gzip
import subprocess
import sys

import pytest

HEADER = 'Properties=species:S:1:pos:R:3 pbc="F F F"'


@pytest.mark.parametrize(
    "name, text, where",
    [
        ("bad.xyz", f"999999999999\n{HEADER}\nH 0 0 0\n", "frame 0: line 1"),
        (
            "bad.xyz.gz",
            f"2\n{HEADER}\nH 0 0 0\nH 0 0 1\n2147483648\n{HEADER}\nH 0 0 0\n",
            "frame 1: line 5",
        ),
    ],
    ids=["huge", "compressed"],
)
def test_a_huge_atom_count_is_one_line_exit_2_at_once(tmp_path, name, text, where):
    data = text.encode()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    done = subprocess.run(
        [sys.executable, "-m", "metatrain_mbe", "analyze", name, "-o", "out"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,  # the start-up (torch) takes a few seconds; a hang is killed here
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        f"mtt-mbe analyze: error: {name}: not a readable extended XYZ file ({where} announces "
    ), done.stderr
    assert done.stderr.endswith(" atoms but the file has 2 more lines)\n"), done.stderr
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
