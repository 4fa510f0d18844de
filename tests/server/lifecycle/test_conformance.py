"""The MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in .ci/run), every server
scenario it lists, against `rk serve-mcp` over HTTP: at the 2026-07-28 wire, at the 2025-11-25 wire
(handshake era), and the extension scenarios (tasks, skills) one by one.

Scenarios that call the suite's fixture tools, resources and prompts (`FIXTURE_SCENARIOS`) run
against conformance_fixture.py: ReasonKit's server, transport and HTTP gate with the fixtures added
(stateless HTTP for 2026-07-28, stateful sessions for the 2025 back channel of sampling and
elicitation). All others run against the plain `rk serve-mcp`.

conformance-expected-failures.txt lists what is known to fail, one `<wire> <scenario>: reason` a
line. The test fails for a failure not listed, and for a listed one that passes (so the list only
shrinks). Needs Node >= 22 and the suite in tools/node (test_external_clients.py's check).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.conftest import routed
from tests.server.lifecycle.test_external_clients import INSTALL, NODE_BIN, ROOT, node_env, node_missing
from tests.server.procs import HttpServer

SUITE_VERSION = "0.2.0-alpha.12"
SUITE_DIR = NODE_BIN.parent / "@modelcontextprotocol" / "conformance"
EXPECTED = Path(__file__).with_name("conformance-expected-failures.txt")
WIRES = ("2026-07-28", "2025-11-25")
EXTENSION = "extension"
#: scenarios that need the suite's fixture tools, resources or prompts (or its diagnostic tools)
FIXTURE_SCENARIOS = re.compile(
    r"^(tools-call-|resources-(read|templates|subscribe|unsubscribe)|prompts-get-|input-required-|tasks-"
    r"|completion-|logging-set-level|json-schema-|elicitation-|server-stateless|http-custom-header-)"
)
FIXTURE = [sys.executable, "-m", "tests.server.lifecycle.conformance_fixture"]
LISTED = re.compile(r"^\s+- (\S+) \[([^\]]+)\]$")
RESULT_DIR = re.compile(r"^server-(.+)-\d{4}-\d\d-\d\dT")


@pytest.fixture(autouse=True)
def _needs_suite() -> None:
    from tests.programs import skip_or_fail

    missing = node_missing() or _suite_missing()
    if missing is not None:
        skip_or_fail(f"NOT TESTED: the MCP conformance suite: {missing}; install with: {INSTALL}")


def _suite_missing() -> str | None:
    try:
        version = json.loads((SUITE_DIR / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return f"@modelcontextprotocol/conformance is not installed in {NODE_BIN.parent.parent}"
    if version != SUITE_VERSION:
        return f"@modelcontextprotocol/conformance {version} is installed; the tests pin {SUITE_VERSION}"
    return None


def test_ci_installs_the_pinned_suite() -> None:
    """.ci/run installs (and upgrades a cached copy to) exactly the version these tests expect."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"\nCONFORMANCE_VERSION={SUITE_VERSION}\n" in ci
    assert '"@modelcontextprotocol/conformance@$CONFORMANCE_VERSION"' in ci
    assert '"$installed_conformance" != "$CONFORMANCE_VERSION"' in ci  # an old cached copy is upgraded


def suite_scenarios(home: Path) -> dict[str, set[str]]:
    """Every server scenario the installed suite lists -> the wires it applies to."""
    listed = subprocess.run(
        [str(NODE_BIN / "conformance"), "list", "--server"],
        capture_output=True,
        text=True,
        env=node_env(home),
        timeout=60,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    found = {}
    for line in listed.stdout.splitlines():
        match = LISTED.match(line)
        if match:
            found[match[1]] = set(match[2].split(","))
    assert len(found) > 40, listed.stdout  # the suite lists ~70 server scenarios
    return found


def run_suite(url: str, out: Path, home: Path, *args: str) -> dict[str, list[str]]:
    """Run the suite (or one scenario) against `url`; each scenario -> its failed checks."""
    # a scenario's own limit doubled (30 s by default): the machine under test may be busy
    subprocess.run(
        [str(NODE_BIN / "conformance"), "server", "--url", url, "-o", str(out), "--timeout", "60000", *args],
        capture_output=True,
        text=True,
        env=node_env(home),
        timeout=240,
    )
    results = {}
    for folder in out.iterdir():
        match = RESULT_DIR.match(folder.name)
        if match and (folder / "checks.json").exists():
            checks = json.loads((folder / "checks.json").read_text())
            failed = [
                f"{c['id']}: {c.get('errorMessage', '')[:200]}" for c in checks if c["status"] == "FAILURE"
            ]
            results[match[1]] = failed
    return results


def timed_out_only(failed: list[str]) -> bool:
    """A scenario whose only failure is the suite's own time limit: on a loaded 2-core machine a
    stateful 2025 scenario (elicitation, sampling) has hit the 60 s limit while passing alone in
    seconds, so it is run once more by itself; a second time-out, or any other failure, counts."""
    return bool(failed) and all(f.startswith("scenario-timeout") for f in failed)


def expected_failures() -> dict[tuple[str, str], str]:
    found = {}
    for line in EXPECTED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            where, _, reason = line.partition(":")
            wire, scenario = where.split()
            assert reason.strip(), f"no reason given: {line}"
            found[(wire, scenario)] = reason.strip()
    return found


# ~60-100 s alone; more beside the rest of the suite on 2 shared cores (the default limit is 120 s)
@pytest.mark.timeout(400)
def test_conformance_suite(server_env, fake_llm, tmp_path: Path) -> None:
    fake_llm.default = routed({})
    env = {
        **server_env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), server_env.get("PYTHONPATH")])),
    }
    home = tmp_path / "node-home"
    home.mkdir()
    scenarios = suite_scenarios(home)
    servers = {
        "product": HttpServer(env),
        "fixture": HttpServer({**env, "REASONKIT_DATA_DIR": str(tmp_path / "fx")}, command=FIXTURE),
        "stateful": HttpServer(
            {**env, "REASONKIT_DATA_DIR": str(tmp_path / "fx2")}, "--stateful", command=FIXTURE
        ),
    }
    try:
        got: dict[tuple[str, str], list[str]] = {}
        for wire, fixture in zip(WIRES, ("fixture", "stateful"), strict=True):
            for name, server in (("product", "product"), ("fixture", fixture)):
                url = f"{servers[server].url}/mcp"
                out = tmp_path / f"{name}-{wire}"
                ran = run_suite(url, out, home, "--suite", "all", "--spec-version", wire)
                for scenario, failed in ran.items():
                    if timed_out_only(failed):  # once more, alone: see timed_out_only
                        again = run_suite(
                            url,
                            out / f"again-{scenario}",
                            home,
                            "--scenario",
                            scenario,
                            "--spec-version",
                            wire,
                        )
                        failed = again.get(scenario, failed)
                    if (name == "fixture") == bool(FIXTURE_SCENARIOS.match(scenario)):
                        got[(wire, scenario)] = failed
        for scenario, wires in scenarios.items():
            if EXTENSION in wires:
                target = servers["fixture" if FIXTURE_SCENARIOS.match(scenario) else "product"]
                url = f"{target.url}/mcp"
                ran = run_suite(url, tmp_path / f"ext-{scenario}", home, "--scenario", scenario)
                got[(EXTENSION, scenario)] = ran.get(scenario, ["no result"])
    finally:
        codes = {name: srv.stop() for name, srv in servers.items()}
    wanted = {(w, s) for s, wires in scenarios.items() for w in (*WIRES, EXTENSION) if w in wires}
    missing = sorted(k for k in wanted if k not in got)
    expected = expected_failures()
    unexpected = {f"{w} {s}": got[(w, s)] for (w, s) in sorted(got) if got[(w, s)] and (w, s) not in expected}
    fixed = sorted(f"{w} {s}" for (w, s) in expected if (w, s) in got and not got[(w, s)])
    stale = sorted(f"{w} {s}" for (w, s) in expected if (w, s) not in got)
    assert not missing, f"scenarios the suite lists but that did not run: {missing}"
    assert not unexpected, (
        "conformance failures not in " + EXPECTED.name + ":\n" + json.dumps(unexpected, indent=1)
    )
    assert not fixed, f"these pass now: remove them from {EXPECTED.name}: {fixed}"
    assert not stale, f"{EXPECTED.name} names scenarios the suite did not run: {stale}"
    assert codes == {"product": 0, "fixture": 0, "stateful": 0}, codes
