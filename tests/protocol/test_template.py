import pytest

from reasonkit.errors import TemplateError
from reasonkit.protocol.template import Template, render


def test_values_and_blocks():
    t = "Q: {{ inputs.query }}{{#if inputs.context}} C: {{ inputs.context }}{{else}} (no context){{/if}}"
    assert render(t, {"inputs": {"query": "why"}}) == "Q: why (no context)"
    assert render(t, {"inputs": {"query": "why", "context": "bg"}}) == "Q: why C: bg"
    assert Template(t).paths() == ["inputs.query", "inputs.context", "inputs.context"]


@pytest.mark.parametrize(
    "hostile",
    [
        "{{ inputs.secret }}",
        "{0}",
        "${x}",
        "{% for x in y %}",
        "{{#if a}}b{{/if}}",
        "}}{{",
        "__import__('os')",
    ],
)
def test_user_text_is_never_template_syntax(hostile):
    out = render("<q>{{ inputs.query }}</q>", {"inputs": {"query": hostile, "secret": "LEAK"}})
    assert out == f"<q>{hostile}</q>"


def test_value_rendering():
    vals = {"s": {"list": ["a", "b"], "obj": {"k": 1}, "flag": False, "n": 0.5}}
    assert render("{{ s.list }}", vals) == "- a\n- b"
    assert render("{{ s.obj }}", vals) == '{\n  "k": 1\n}'
    assert render("{{ s.flag }} {{ s.n }} [{{ s.missing }}]", vals) == "false 0.5 []"


@pytest.mark.parametrize(
    "bad, msg",
    [
        ("{{#if x}}never closed", "never closed"),
        ("{{/if}}", "without a matching"),
        ("{{else}}", "outside"),
        ("{{ not a path! }}", "valid tag"),
        ("{{ }}", "not a value path"),
    ],
)
def test_parse_errors(bad, msg):
    with pytest.raises(TemplateError, match=msg):
        Template(bad)
