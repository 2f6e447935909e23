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


def test_route_table_leads_from_each_url_to_its_code() -> None:
    """Every row of the README's route table names a REST module that declares the route and a
    service package or module that exists: two steps from a URL to its code."""
    root = Path(__file__).parents[1]
    section = README.split("## REST routes (Label Studio 0.9)", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `") and "/" in line]
    assert len(rows) >= 25
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        route, module, _operation, service = cells
        source = (root / "rest_compat" / module.strip("`")).read_text(encoding="utf-8")
        path = route.split("`")[1].split(" ", 1)[1].split("?")[0].removeprefix("/api")
        declared = path.replace("<id>", "{").replace("<cid>", "{").split("{")[0].rstrip("/")
        assert f'"{declared}' in source, (route, module)
        if service != "—":
            assert (root / "server" / "services" / service.strip("`")).exists(), row
