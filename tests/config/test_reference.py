"""The configuration reference generator (its output in docs/configuration.md is checked in tests/test_docs.py)."""

from mlray.config.reference import BEGIN_MARKER, END_MARKER, render, replace_block, rows
from mlray.config.registry import config_files


def test_every_leaf_field_is_listed_with_its_bounds():
    reference = render()
    for file_name, model in config_files().items():
        assert f"configs/{file_name}" in reference
        for key, _, _, _ in rows(model):
            assert f"`{key}`" in reference
    assert "| `training.batch_size` | int > 0 | `32` |" in reference


def test_replace_block_only_touches_the_marked_block():
    document = f"before\n{BEGIN_MARKER}\nold\n{END_MARKER}\nafter\n"
    assert replace_block(document, "new\n") == f"before\n{BEGIN_MARKER}\nnew\n{END_MARKER}\nafter\n"
