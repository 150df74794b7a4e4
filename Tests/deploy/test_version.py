"""`ipquest --version` and `ipquest version`: the release number and the commit the binary was built from."""
import re
import subprocess

from harness import REPO, binary

LINE = re.compile(r"^ipquest (\d+\.\d+\.\d+) \(commit ([0-9a-f]{40}(?:-dirty)?|unknown)\)$")


def run(*args):
    result = subprocess.run([binary(), *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_flag_and_subcommand_print_the_same_line():
    flag, sub = run("--version"), run("version")
    assert flag == sub
    assert LINE.match(flag), flag


def test_commit_is_the_one_built_from():
    """make test builds through scripts/with-build-info.sh, so the commit is HEAD's (a plain
    `swift build` says "unknown", which fails here on purpose: that binary cannot tell)."""
    commit = LINE.match(run("--version")).group(2)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()
    assert commit != "unknown", "built without scripts/with-build-info.sh (make build / make test)"
    assert commit.removesuffix("-dirty") == head
