"""bench.ab_loss refuses bad arguments with one clear line before any work (no compile, no git archive for a bad shape)."""

import pytest

from bench import ab_loss


@pytest.mark.parametrize("argv, needle", [
    (["--base", "no-such-revision-xyz", "--rounds", "1"], "--base 'no-such-revision-xyz': git archive failed"),
    (["--base", "HEAD", "--shape", "0x4"], "--shape must be BATCHxLENGTH"),
    (["--base", "HEAD", "--shape", "64by4096"], "--shape must be BATCHxLENGTH"),
    (["--base", "HEAD", "--rounds", "0"], "--rounds >= 1"),
])
def test_bad_arguments_are_one_clear_error(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        ab_loss.main(argv)
    assert exit_.value.code == 2
    assert needle in capsys.readouterr().err


def test_base_package_is_the_committed_tree_under_its_own_name(tmp_path):
    import subprocess

    fast = ab_loss.base_package("HEAD", tmp_path)
    assert fast.__name__ == "dgpo_ref_base.fast" and fast.__file__ == str(tmp_path / "dgpo_ref_base" / "fast.py")
    committed = subprocess.run(["git", "-C", str(ab_loss.ROOT), "show", "HEAD:dgpo_ref/fast.py"],
                               capture_output=True, text=True, check=True).stdout
    assert (tmp_path / "dgpo_ref_base" / "fast.py").read_text() == committed
    assert callable(fast.compiled_only)
