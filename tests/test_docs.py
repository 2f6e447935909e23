"""The README documents every setting and keeps its two first-screen commands."""

from pathlib import Path

from server.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_lists_every_setting() -> None:
    missing = [env for env, *_ in Settings.documented() if f"`{env}`" not in README]
    assert missing == []


def test_readme_first_screen_has_the_two_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:20])
    assert "pip install -e . && labelgraph start my_project --init" in first_screen
    assert "pip install -e '.[test]' && pytest" in first_screen


def test_docs_compat_exists_and_names_each_fixed_quirk() -> None:
    compat = (Path(__file__).parents[1] / "docs" / "compat.md").read_text(encoding="utf-8")
    for quirk in ("Q-3", "Q-5", "Q-6", "Q-7", "Q-8", "Q-9", "Q-12", "Q-16", "Q-17", "Q-18"):
        assert quirk in compat
