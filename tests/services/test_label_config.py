"""The labeling-config parser: the golden behaviour of every template and example config, the
validation pipeline's messages and structured issues, safe XML, derived forms, speed."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.services.config import issues, sample_tasks
from server.services.config.label_config import (
    DEFAULT_MAX_BYTES,
    parse_uncached,
    strip_template_metadata,
    validation_errors,
    validation_issues,
)
from server.services.config.model import BASIC_EXPORT_FORMATS
from server.services.config.xml_checks import MAX_DEPTH
from tests.recorded_fixtures import behaviour, config_text, recorded_path, same_sample

BEHAVIOUR = behaviour()
KEYS = sorted(BEHAVIOUR)


def test_golden_file_covers_every_fixture_config() -> None:
    fixtures = recorded_path()
    on_disk = {
        str(p.relative_to(fixtures))
        for pattern in ("configs/*.xml", "examples/*/config.xml", "examples/starter.xml")
        for p in fixtures.glob(pattern)
    }
    assert on_disk == set(BEHAVIOUR)


@pytest.mark.parametrize("key", KEYS)
def test_golden_parse(key: str) -> None:
    expected = BEHAVIOUR[key]
    config = parse_uncached(config_text(key))
    assert dict(config.data_types) == expected["data_types"]
    assert config.parsed_config() == expected["parsed_config"]
    assert list(config.export_formats) == expected["export_formats"]


@pytest.mark.parametrize("key", KEYS)
def test_golden_sample_task(key: str) -> None:
    expected = BEHAVIOUR[key]["import_example"]
    sample = sample_tasks.editor_sample(parse_uncached(config_text(key)))
    if key == "examples/ts_loading_json/config.xml":
        # The original crashed (500): JSON time series without timeColumn. Fixed: no time
        # column, one random column per channel (docs/compat.md).
        assert expected["status"] == 500
        assert list(sample["ts"]) == ["first_column", "second_column"]
        assert all(len(v) == 100 for v in sample["ts"].values())
        return
    assert expected["status"] == 200
    assert same_sample(expected["body"], sample), (expected["body"], sample)


# --- the pipeline ----------------------------------------------------------------------------

TEXT = '<Text name="t" value="$text"/>'


@pytest.mark.parametrize(
    ("config", "code", "message", "tag", "attribute"),
    [
        (None, issues.NOT_A_STRING, "can only parse strings", None, None),
        (
            "",
            issues.XML_SYNTAX,
            "Document is empty, line 1, column 1 (<string>, line 1)",
            None,
            None,
        ),
        (
            "hello",
            issues.XML_SYNTAX,
            "Start tag expected, '<' not found, line 1, column 1 (<string>, line 1)",
            None,
            None,
        ),
        (
            f"<View>{TEXT}<Choices name='c'><Choice value='A'/><Choice value='B'/></Choices>"
            "</View>",
            issues.STRUCTURE,
            "Validation failed on : 'toName' is a required property",
            "Choices",
            "toName",
        ),
        (
            '<View><Image value="$image"/></View>',
            issues.STRUCTURE,
            "Validation failed on : 'name' is a required property",
            "Image",
            "name",
        ),
        (
            f'<View>{TEXT}<Text name="u"/></View>',
            issues.STRUCTURE,
            "Validation failed on Text/1: 'value' is a required property",
            "Text",
            "value",
        ),
        (
            f'<View>{TEXT}<Choices name="c" toName="t"><Choice value="A"/><Choice/></Choices>'
            "</View>",
            issues.STRUCTURE,
            "Validation failed on Choice/1: 'value' is a required property",
            "Choice",
            "value",
        ),
        (
            f'<View>{TEXT}<Choices name="c" toName="t"><Choice alias="x"/></Choices></View>',
            issues.STRUCTURE,
            "Validation failed on Choice: 'value' is a required property",
            "Choice",
            "value",
        ),
        (
            f'<View>{TEXT}<Choices name="c" toName="t"><View><Label alias="x@y"/></View>'
            "</Choices></View>",
            issues.STRUCTURE,
            "Validation failed on : 'value' is a required property",
            "Label",
            "value",
        ),
        (
            f'<View>{TEXT}<Text name="t" value="$u"/></View>',
            issues.DUPLICATE_NAME,
            "Label config contains non-unique names ['t', 't']",
            "Text",
            "name",
        ),
        (
            f'<View>{TEXT}<Labels name="l" toName="t,x"><Label value="A"/></Labels></View>',
            issues.UNKNOWN_TO_NAME,
            "toName=\"x\" not found in names: ['l', 't']",
            "Labels",
            "toName",
        ),
        (
            f'<View>{TEXT}<Filter name="f" toName="l"/>'
            '<Labels name="l" toName="f"><Label value="A"/></Labels></View>',
            issues.TO_NAME_NOT_OBJECT,
            "\"to_name=f is specified for output tag name=l, but we can't find it among "
            'input tags"',
            "Labels",
            "toName",
        ),
    ],
)
def test_pipeline_messages_and_issues(
    config: str | None, code: str, message: str, tag: str | None, attribute: str | None
) -> None:
    (issue,) = validation_issues(config)
    assert (issue.code, issue.message, issue.tag, issue.attribute) == (
        code,
        message,
        tag,
        attribute,
    )
    with pytest.raises(issues.LabelConfigError) as raised:
        parse_uncached(config)
    assert raised.value.details["errors"] == [message]
    assert raised.value.details["configErrors"][0]["code"] == code.upper()


def test_issue_lines_point_at_the_offending_tag() -> None:
    config = '<View>\n  <Text name="t" value="$t"/>\n\n  <Image value="$i"/>\n</View>'
    (issue,) = validation_issues(config)
    assert (issue.tag, issue.line) == ("Image", 4)


@pytest.mark.parametrize(
    "config",
    [
        # compat Q-22: a single Choice
        f'<View>{TEXT}<Choices name="c" toName="t"><Choice value="A"/></Choices></View>',
        # numeric and boolean-looking values (a relaxation the spec recommends)
        f'<View>{TEXT}<Choices name="c" toName="t"><Choice value="1"/><Choice value="true"/>'
        "</Choices></View>",
        '<View><Text name="t" value="5"/></View>',
        # no View root, no objects, unknown tags, empty
        '<Choices name="c"><Choice alias="A"/></Choices>',
        "<View></View>",
        '<View><Video name="v" value="$video"/><Style>.a { color: red }</Style></View>',
        # a plain XML declaration (the original refused any encoding declaration)
        '<?xml version="1.0" encoding="utf-8"?>\n<View><Header value="é"/></View>',
    ],
)
def test_accepted(config: str) -> None:
    assert validation_errors(config) == []


def test_model() -> None:
    config = parse_uncached(
        """<View>
  <Header value="$title"/>
  <Text name="text" value="$text"/>
  <Image name="img" value="$image"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative" alias="neg"/><Choice value="Positive"/>
  </Choices>
  <RectangleLabels name="box" toName="img"><Label value="Car" background="red"/></RectangleLabels>
  <Pairwise name="pw" toName="text,img"/>
  <TextArea name="notes"/>
  <Filter name="f" toName="box"/>
</View>"""
    )
    assert dict(config.data_types) == {"title": "Header", "text": "Text", "image": "Image"}
    assert list(config.objects) == ["text", "img"]
    assert list(config.controls) == ["sentiment", "box", "pw"]
    sentiment = config.controls["sentiment"]
    assert sentiment.labels == ("Positive", "neg")
    assert sentiment.result_type == "choices"
    assert sentiment.schema_tuple == ("sentiment", "text", "choices")
    assert dict(sentiment.labels_attrs["neg"]) == {"value": "Negative", "alias": "neg"}
    assert config.controls["pw"].to_name == ("text", "img")
    assert [o.name for o in config.controls["pw"].inputs] == ["text", "img"]
    assert "TextArea" in [v.tag for v in config.visuals]  # no toName: not a control
    assert config.first_data_key == "title"
    assert config.has_control_tags and not config.is_empty
    assert config.export_formats == BASIC_EXPORT_FORMATS  # two data keys
    assert config.import_formats == ("json", "csv", "tsv")
    assert dict(config.type_checks)["image"] == (str, list)
    with pytest.raises(TypeError):
        config.controls["x"] = sentiment  # type: ignore[index]


def test_import_formats() -> None:
    one = parse_uncached('<View><Text name="t" value="$t"/></View>')
    assert one.import_formats == ("json", "csv", "tsv", "txt")
    with_list = parse_uncached(
        '<View><List name="l" value="$items" elementValue="$text" elementTag="Text"/></View>'
    )
    assert with_list.import_formats == ("json",)


def test_line_and_full_forms() -> None:
    plain = '<View>\n  <Text name="t" value="$t"/>\n</View>'
    config = parse_uncached(plain)
    assert config.full == plain
    assert config.line == '<View>  <Text name="t" value="$t"/></View>'
    # Comments: re-serialised as HTML (explicit closing tags), as the original.
    commented = '<!-- top -->\n<View>\n  <!-- note -->\n  <Text name="t" value="$t"/>\n</View>'
    config = parse_uncached(commented)
    assert config.line == '<View>  <Text name="t" value="$t"></Text></View>'


def test_template_metadata_is_stripped() -> None:
    text = '<!-- {"title": "T"} -->\n<View></View>'
    assert strip_template_metadata(text) == "<View></View>"
    assert strip_template_metadata("<View></View>") == "<View></View>"


# --- safe XML --------------------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + ']>\n<View><Header value="&lol9;"/></View>'
)


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.perf_counter()
    (issue,) = validation_issues(BILLION_LAUGHS)
    assert time.perf_counter() - started < 0.5
    assert issue.code == issues.FORBIDDEN_XML
    assert "DOCTYPE" in issue.message and "entity" in issue.message


def test_external_entity_never_reads_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    config = (
        f'<!DOCTYPE View [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<View><Header value="&x;"/><Text name="t" value="&x;"/></View>'
    )
    (issue,) = validation_issues(config)
    assert issue.code == issues.FORBIDDEN_XML
    assert "TOP-SECRET" not in issue.message
    # Without a DTD an entity reference is just undefined: lxml must not look it up anywhere.
    (issue,) = validation_issues('<View><Header value="&x;"/></View>')
    assert issue.code == issues.XML_SYNTAX and "Entity 'x' not defined" in issue.message


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY x "pwned">')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_external_dtd_and_xinclude_open_no_connection(http_server: tuple[str, list[str]]) -> None:
    url, hits = http_server
    configs = [
        f'<!DOCTYPE View SYSTEM "{url}/evil.dtd"><View><Header value="&x;"/></View>',
        f'<!DOCTYPE View [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]><View/>',
        f'<View xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{url}/x.xml"/></View>',
    ]
    for config in configs:
        validation_issues(config)
    assert hits == []
    assert validation_issues(configs[0])[0].code == issues.FORBIDDEN_XML


def test_size_limit() -> None:
    config = "<View>" + '<Header value="x"/>' * 100 + "</View>"
    assert validation_errors(config, max_bytes=len(config)) == []
    (issue,) = validation_issues(config, max_bytes=len(config) - 1)
    assert issue.code == issues.TOO_LARGE
    assert f"the limit is {len(config) - 1} bytes" in issue.message
    big = "<View>" + " " * DEFAULT_MAX_BYTES + "</View>"
    assert validation_issues(big)[0].code == issues.TOO_LARGE


def test_depth_limit() -> None:
    deep = "<View>" * (MAX_DEPTH + 1) + "</View>" * (MAX_DEPTH + 1)
    (issue,) = validation_issues(deep)
    assert issue.code == issues.TOO_DEEP
    very_deep = "<View>" * 5000 + "</View>" * 5000  # libxml2's own limit is lower
    assert validation_issues(very_deep)[0].code in (issues.TOO_DEEP, issues.XML_SYNTAX)
    ok = "<View>" * MAX_DEPTH + "</View>" * MAX_DEPTH
    assert validation_errors(ok) == []


def test_doctype_in_a_comment_or_text_is_not_a_doctype() -> None:
    config = "<!-- <!DOCTYPE x> -->\n<View><Header value='&lt;!DOCTYPE x&gt;'/></View>"
    assert validation_errors(config) == []


# --- speed -----------------------------------------------------------------------------------


def test_parsing_the_largest_fixture_is_fast() -> None:
    fixtures = recorded_path()
    files = [*fixtures.glob("configs/*.xml"), *fixtures.glob("examples/*/config.xml")]
    largest = max(files, key=lambda p: p.stat().st_size).read_text(encoding="utf-8")
    for _ in range(20):
        parse_uncached(largest)
    timings = []
    for _ in range(100):
        started = time.perf_counter()
        parse_uncached(largest)
        timings.append(time.perf_counter() - started)
    assert sorted(timings)[50] < 0.005  # median; measured ~0.15 ms
