from pathlib import Path

from schema import schema

SDL = Path(__file__).parents[2] / "schema" / "schema.graphql"


def test_committed_sdl_is_current() -> None:
    expected = schema.as_str() + "\n"
    assert SDL.read_text(encoding="utf-8") == expected, (
        "schema/schema.graphql is stale: run `python -m schema > schema/schema.graphql`"
    )
