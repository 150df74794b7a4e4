"""`make install`: binary, shell completions and a man page generated from the same help text."""
import os
import re
import subprocess

import pytest

from harness import REPO, binary

SUBCOMMANDS = ["serve", "migrate", "claims", "ranges", "location", "tunnel", "backup", "restore", "version"]


@pytest.mark.seconds(570)  # builds ArgumentParser's generate-manual tool (waits for SwiftPM's lock)
def test_install_files_into_a_staging_root(workdir):
    root = os.path.join(workdir, "root")
    result = subprocess.run(["make", "-C", REPO, "install-files", f"DESTDIR={root}", "PREFIX=/usr",
                             f"IPQUEST_BIN={binary()}"], capture_output=True, text=True, timeout=540)
    assert result.returncode == 0, result.stdout + result.stderr
    usr = os.path.join(root, "usr")
    installed = os.path.join(usr, "bin", "ipquest")
    assert os.access(installed, os.X_OK)

    # bash: the completion function offers every subcommand after `ipquest `.
    bash = os.path.join(usr, "share", "bash-completion", "completions", "ipquest")
    script = f"""
        source {bash}
        COMP_WORDS=(ipquest ""); COMP_CWORD=1; COMP_LINE="ipquest "; COMP_POINT=${{#COMP_LINE}}
        fn=$(complete -p ipquest | sed -E 's/.*-F ([^ ]+).*/\\1/')
        "$fn" ipquest "" ipquest
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    offered = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert offered.returncode == 0, offered.stderr
    words = set(offered.stdout.split())
    assert set(SUBCOMMANDS) <= words, words

    zsh = os.path.join(usr, "share", "zsh", "site-functions", "_ipquest")
    fish = os.path.join(usr, "share", "fish", "vendor_completions.d", "ipquest.fish")
    for path, marker in ((zsh, "#compdef ipquest"), (fish, "complete -c 'ipquest'")):
        text = open(path).read()
        assert marker in text, path
        assert all(s in text for s in SUBCOMMANDS), path

    # The man page: rendered by man(1), it names every subcommand and a flag's help text.
    page = os.path.join(usr, "share", "man", "man1", "ipquest.1")
    rendered = subprocess.run(["man", "-l", "-Tutf8", page], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "MANWIDTH": "200", "MAN_KEEP_FORMATTING": "0"})
    assert rendered.returncode == 0, rendered.stderr
    text = re.sub(".\b", "", rendered.stdout)  # no overstrike (bold) in the comparison
    assert "IPQUEST(1)" in text
    for sub in SUBCOMMANDS:
        assert sub in text, sub
    assert "Copy the live SQLite database" in text  # the backup command's abstract, from the help text
