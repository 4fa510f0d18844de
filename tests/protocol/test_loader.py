"""Loading and validation of protocol and profile files, including the shipped ones."""

import subprocess
import sys
from pathlib import Path

import pytest

from reasonkit.protocol.loader import builtin_dir, load_registry, validate_paths

GOOD = """
id = "tiny"
name = "Tiny"
description = "d"
result = { step = "s1", field = "answer" }
[inputs.query]
required = true
[inputs.context]
[[steps]]
id = "s1"
kind = "generate"
prompt = "{{ inputs.query }} {{ inputs.context }}"
output = { type = "object", required = ["answer", "confidence"], \
properties = { answer = { type = "string" }, confidence = { type = "number" } } }
"""


def write(d: Path, name: str, text: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text(text)
    return p


def test_builtin_protocols_and_profiles_are_valid():
    reg = load_registry([], include_builtin=True)
    assert reg.problems == []
    assert {"gigathink", "laserlogic", "bedrock", "proofguard", "brutalhonesty"} <= set(reg.protocols)
    assert {"quick", "balanced", "deep", "paranoid", "decide", "scientific", "powercombo"} <= set(
        reg.profiles
    )
    assert max(s.min_items or 0 for s in reg.protocols["gigathink"].steps) >= 10  # 10+ perspectives
    names = {p: set(reg.protocols[p].inputs) for p in reg.protocols}
    assert names["gigathink"] >= {"query", "context"}
    assert names["laserlogic"] >= {"argument", "context"}
    assert names["bedrock"] >= {"statement", "context"}
    assert names["proofguard"] >= {"claim", "sources", "context"}
    assert names["brutalhonesty"] >= {"work", "criteria", "context"}


def test_user_dir_overrides_builtin_by_id(tmp_path):
    text = GOOD.replace('id = "tiny"', 'id = "gigathink"').replace('name = "Tiny"', 'name = "My GigaThink"')
    write(tmp_path, "mine.toml", text)
    reg = load_registry([tmp_path])
    assert reg.protocols["gigathink"].name == "My GigaThink"
    assert reg.overridden and "gigathink" in reg.overridden[0]


def problems_for(tmp_path, text, name="p.toml"):
    write(tmp_path, name, text)
    _, problems = validate_paths([tmp_path])
    return [str(p) for p in problems]


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda t: t.replace('kind = "generate"', 'kind = "generate"\ndepends_on = ["nope"]'),
            "steps[0].depends_on: names unknown step 'nope'",
        ),
        (
            lambda t: t.replace("{{ inputs.query }}", "{{ inputs.qurey }}"),
            "template names 'inputs.qurey', but the protocol has no such input",
        ),
        (
            lambda t: t.replace('answer = { type = "string" }', 'answer = { type = "strang" }'),
            "is not a valid JSON schema",
        ),
        (
            lambda t: t.replace('"answer", "confidence"', '"answer"').replace(
                ', confidence = { type = "number" }', ""
            ),
            "numeric `confidence` property",
        ),
        (
            lambda t: t.replace(" {{ inputs.context }}", ""),
            "inputs.context: is never used by any step prompt",
        ),
        (
            lambda t: t.replace('kind = "generate"', 'kind = "generate"\ndepends = ["x"]'),
            "steps[0].depends: unknown key",
        ),
        (
            lambda t: t.replace('field = "answer"', 'field = "nope"'),
            "result.field: 'nope' is not a field of step 's1'",
        ),
        (lambda t: t + "[oops", "not valid TOML"),
        (lambda t: t.replace("{{ inputs.query }}", "{{#if inputs.query}}x"), "never closed"),
    ],
)
def test_validation_reports_file_field_and_sentence(tmp_path, change, expected):
    probs = problems_for(tmp_path, change(GOOD))
    assert any(expected in p for p in probs), probs
    assert all(p.startswith(str(tmp_path / "p.toml")) for p in probs)


def test_cycle_is_reported(tmp_path):
    two = (
        GOOD.replace('kind = "generate"', 'kind = "generate"\ndepends_on = ["s2"]')
        + """
[[steps]]
id = "s2"
kind = "analyze"
depends_on = ["s1"]
prompt = "{{ steps.s1.answer }}"
output = { type = "object", required = ["confidence"], properties = { confidence = { type = "number" } } }
"""
    )
    probs = problems_for(tmp_path, two)
    assert any(
        "dependency cycle: s1 -> s2 -> s1" in p or "dependency cycle: s2 -> s1 -> s2" in p for p in probs
    ), probs


def test_template_naming_a_step_that_is_not_a_dependency(tmp_path):
    two = (
        GOOD
        + """
[[steps]]
id = "s2"
kind = "analyze"
prompt = "{{ steps.s1.answer }}"
output = { type = "object", required = ["confidence"], properties = { confidence = { type = "number" } } }
"""
    )
    probs = problems_for(tmp_path, two)
    assert any("step 's1' is not in depends_on" in p for p in probs), probs


def test_duplicate_protocol_id(tmp_path):
    write(tmp_path, "a.toml", GOOD)
    write(tmp_path, "b.toml", GOOD)
    _, probs = validate_paths([tmp_path])
    assert any("duplicate protocol id 'tiny'" in str(p) for p in probs)


def test_profile_problems(tmp_path):
    write(tmp_path, "tiny.toml", GOOD)
    write(
        tmp_path,
        "profiles.toml",
        """
[profiles.p]
description = "d"
min_confidence = 0.5
[[profiles.p.chain]]
protocol = "tiny"
when = { confidence_below = 0.5 }
[[profiles.p.chain]]
protocol = "missing"
[[profiles.p.chain]]
protocol = "tiny"
inputs = { query = "{{ results.nothere.answer }}", nope = "x" }
""",
    )
    _, probs = validate_paths([tmp_path])
    text = "\n".join(map(str, probs))
    assert "the first entry cannot be conditional" in text
    assert "unknown protocol 'missing'" in text
    assert "duplicate chain entry id 'tiny'" in text
    assert "protocol 'tiny' has no input 'nope'" in text
    assert "results.nothere.answer" in text


def test_bad_user_file_does_not_hide_good_ones(tmp_path):
    write(tmp_path, "bad.toml", "id = [")
    write(tmp_path, "tiny.toml", GOOD)
    reg = load_registry([tmp_path])
    assert "tiny" in reg.protocols and "gigathink" in reg.protocols
    assert any("bad.toml" in str(p) for p in reg.problems)


def rk(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "reasonkit.cli", *args], capture_output=True, text=True, timeout=60, **kw
    )


def test_cli_validate_exit_codes(tmp_path):
    ok = rk("protocols", "validate", str(builtin_dir()))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("ok:")
    write(tmp_path, "p.toml", GOOD.replace("{{ inputs.query }}", "{{ inputs.qurey }}"))
    bad = rk("protocols", "validate", str(tmp_path))
    assert bad.returncode == 1
    assert "inputs.qurey" in bad.stdout and "Traceback" not in bad.stdout + bad.stderr
    missing = rk("protocols", "validate", str(tmp_path / "nope.toml"))
    assert missing.returncode == 1 and "does not exist" in missing.stdout


def test_prompts_may_name_the_step_item_bounds(tmp_path):
    """`{{ min_items }}` / `{{ max_items }}` are the step's bounds as the engine applies them (the
    small-model caps lower them), so a prompt can say how many items to give."""
    from reasonkit.protocol.loader import validate_paths

    source = (Path(__file__).resolve().parents[2] / "protocols" / "gigathink.toml").read_text()
    marker = "prompt = '''"
    assert marker in source
    patched = source.replace(marker, marker + "Give {{ min_items }} to {{ max_items }} items.\n", 1)
    target = tmp_path / "gigathink.toml"
    target.write_text(patched)
    _, problems = validate_paths([target])
    assert problems == []
    target.write_text(source.replace(marker, marker + "{{ most_items }}\n", 1))
    _, problems = validate_paths([target])
    assert any("most_items" in str(p) for p in problems)


def test_undecodable_files_are_problems_and_good_ones_still_load(tmp_path):
    d = tmp_path / "protos"
    write(d, "good.toml", GOOD)
    (d / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    (d / "truncated.toml").write_bytes(GOOD.replace("Tiny", "T\u00efny").encode()[:23])  # cut inside "ï"
    (d / "profiles.toml").write_bytes(b"[profiles.x]\ndescription = '\xe9'\n")
    (d / "deep.toml").write_text("a = " + "[" * 5000)
    reg = load_registry([d], include_builtin=False)
    assert set(reg.protocols) == {"tiny"}
    by_file = {Path(p.file).name: p for p in reg.problems}
    assert set(by_file) == {"binary.toml", "truncated.toml", "profiles.toml", "deep.toml"}
    assert str(by_file["binary.toml"]) == (
        f"{d / 'binary.toml'}: not valid UTF-8 (byte 0xff at position 0: invalid start byte)"
    )
    assert "not valid UTF-8" in by_file["truncated.toml"].message
    assert "unexpected end of data" in by_file["truncated.toml"].message
    assert "byte 0xe9" in by_file["profiles.toml"].message
    assert "nested too deeply" in by_file["deep.toml"].message
    _, problems = validate_paths([d / "binary.toml", d / "profiles.toml"])
    assert [Path(p.file).name for p in problems] == ["binary.toml", "profiles.toml"]
    assert all("not valid UTF-8" in p.message for p in problems)
