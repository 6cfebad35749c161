"""`distgan` stage errors, in this process through the command's entry; the stages chained as the README types them
are in test_readme.py."""

from distgan import cli


def test_wrong_shard_directory_is_named(tmp_path, capsys):
    code = cli.main(["metrics", "--real", str(tmp_path), "--fake", str(tmp_path), "--extractor", "domain"])
    err = capsys.readouterr().err
    assert code == 2 and f"{tmp_path}/manifest.json: no shard manifest" in err
    assert err.startswith("error: ") and "Traceback" not in err
