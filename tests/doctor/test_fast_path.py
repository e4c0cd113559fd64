"""What keeps a plain `bdv2 doctor` fast must not change what it says: the cache of the matrix's TOML and of the
API history's answers (keyed on the files' bytes), the signatures compiled on first use, the Requires-Dist
entries of extras left unparsed."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement

from bdv2.doctor import diskcache, load_matrix
from bdv2.doctor.api.history import load
from bdv2.doctor.api.recorded import recorded_scan
from bdv2.doctor.checks.rules import _is_extra, _names_extra
from bdv2.doctor.errors import MatrixError
from bdv2.doctor.matrix import load as matrix_load
from bdv2.doctor.matrix import shipped

from .helpers import make_snap


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "bdv2" / "doctor"


@pytest.fixture
def shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> Path:
    """A copy of the shipped matrix standing in for it (the loader's cached path)."""
    path = tmp_path / "pkg" / "compat_matrix.toml"
    path.parent.mkdir()
    path.write_text(shipped.default_matrix_path().read_text())
    monkeypatch.setattr(shipped, "default_matrix_path", lambda: path)
    monkeypatch.setattr(matrix_load, "default_matrix_path", lambda: path)
    shipped.shipped_toml.cache_clear()
    yield path
    shipped.shipped_toml.cache_clear()


def _load_fresh() -> matrix_load.Matrix:
    shipped.shipped_toml.cache_clear()  # a new process: only the disk cache remains
    return load_matrix()


def test_the_cached_matrix_is_the_parsed_one_and_an_edit_is_read_again(shipped_copy: Path, cache: Path) -> None:
    first = _load_fresh()
    assert (cache / "matrix.marshal").is_file() and (cache / "matrix-checked.marshal").is_file()
    second = _load_fresh()  # from the cache: patterns compile on first use
    assert "pattern" not in second.signatures[0].__dict__
    assert second.rows == first.rows and second.rules == first.rules and second.groups == first.groups
    assert [(s.id, s.pattern.pattern, s.pattern.flags) for s in second.signatures] == \
        [(s.id, s.pattern.pattern, s.pattern.flags) for s in first.signatures]
    shipped_copy.write_text(shipped_copy.read_text().replace('title = "', 'title = "EDITED ', 1))
    edited = _load_fresh()
    assert edited.rows[0].title.startswith("EDITED ") and not first.rows[0].title.startswith("EDITED ")


def test_a_bad_pattern_in_an_edited_matrix_is_still_refused(shipped_copy: Path) -> None:
    _load_fresh()  # the good file, checked and cached
    text = shipped_copy.read_text()
    at = text.index("[[signatures]]")
    at = text.index("pattern = ", at)
    shipped_copy.write_text(text[:at] + "pattern = '(unclosed'\n" + text[text.index("\n", at) + 1:])
    with pytest.raises(MatrixError, match="invalid regular expression"):
        _load_fresh()


def test_a_cache_that_cannot_be_written_only_costs_the_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    diskcache.put("x", "k", {"a": 1})
    assert diskcache.get("x", "k") is None
    shipped.shipped_toml.cache_clear()
    assert load_matrix().rows


def test_diskcache_answers_only_its_own_key(cache: Path) -> None:
    k = diskcache.key(b"file bytes", "checks")
    assert k != diskcache.key(b"file bytez", "checks") and k != diskcache.key(b"file bytes", "other")
    diskcache.put("t", k, {"rows": [1, 2], "s": "x"})
    assert diskcache.get("t", k) == {"rows": [1, 2], "s": "x"}
    assert diskcache.get("t", diskcache.key(b"other")) is None
    (cache / "t.marshal").write_bytes(b"garbage")
    assert diskcache.get("t", k) is None


def test_the_api_histories_cached_answers_equal_the_history_itself(cache: Path) -> None:
    h = load()
    assert h is not None
    flax_old, flax_new = h.releases("flax")[3], h.releases("flax")[-1]
    for jax in (h.releases("jax")[-1], h.releases("jax")[20], "0.0.1"):
        for flax in (flax_old, flax_new, "0.0.0"):
            snap = make_snap({"jax": jax, "jaxlib": jax, "flax": flax, "optax": h.releases("optax")[0]},
                             requires={"flax": ["jax>=0.4"], "optax": ["jax>=0.4", "chex"]})
            direct = recorded_scan(snap, h)
            assert recorded_scan(snap) == direct  # asked (and stored) through the cache
            assert recorded_scan(snap) == direct  # answered from it
    assert recorded_scan(make_snap({"flax": flax_old})) is None  # no jax: nothing to judge
    old_flax = recorded_scan(make_snap({"jax": h.releases("jax")[-1], "flax": flax_old}, requires={"flax": ["jax"]}))
    assert old_flax is not None and old_flax["stale"]  # a 0.6 flax uses names jax has since removed


@pytest.mark.parametrize("text", [
    'jax[cuda12]>=0.4; extra == "cuda"', 'numpy; python_version < "3.12" and extra == "test"',
    "tomli ; extra=='toml'", 'a; "x" in extras', 'b ; platform_machine == "extra"', 'c ; extra',
    'pkg @ https://example.com/p.whl ; extra == "x"', "plain>=1", 'd; python_version >= "3.9"',
    'e; sys_platform == "linux"', 'f @ https://h/extra;v ; python_version > "3"', "bad req ; extra ==",
])
def test_an_entry_left_unparsed_as_an_extra_is_one_the_check_would_skip(text: str) -> None:
    if not _names_extra(text):
        return
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return  # unparsable: skipped either way
    assert _is_extra(req), text


def test_every_installed_extra_entry_left_unparsed_is_an_extra() -> None:
    from bdv2.doctor.probe.script import probe

    texts = [t for d in probe()["distributions"] for t in d["requires"]]
    assert sum(map(_names_extra, texts)) > 0
    for t in texts:
        if _names_extra(t):
            with contextlib.suppress(InvalidRequirement):
                assert _is_extra(Requirement(t)), t
