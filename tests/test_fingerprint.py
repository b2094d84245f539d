from flamingo_eval.fingerprint import file_sha256


def test_file_hash_follows_content_changes(tmp_path):
    f = tmp_path / "a.json"
    f.write_text("[1]")
    first = file_sha256(f)
    assert file_sha256(f) == first
    f.write_text("[2, 3]")
    assert file_sha256(f) != first
