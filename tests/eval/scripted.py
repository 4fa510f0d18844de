"""A FakeProvider scripted per claim: whether the tool (and the direct baseline) gets a claim right,
and the confidence every step reports for it. The plan step and the triangulation step name the
claim; the verify steps in between do not (factored verification), so with one item at a time the
provider remembers the claim of the current item."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from reasonkit.eval.datasets import Dataset, Item
from reasonkit.eval.harness import DIRECT_SYSTEM
from reasonkit.providers.base import LLMRequest, LLMResponse
from reasonkit.providers.fake import FakeProvider

CLAIM = re.compile(r"<claim>\s*(.*?)\s*</claim>", re.S)


@dataclass
class Script:
    label: bool  # the claim is true
    right: bool  # the tool (and the baseline) answers correctly
    confidence: float  # what every step says


class ScriptedProvider(FakeProvider):
    def __init__(self, scripts: dict[str, Script]):
        super().__init__()
        self.scripts = scripts
        self.current: Script | None = None
        self.direct_calls: list[str] = []

    def _script(self, request: LLMRequest) -> Script | None:
        text = "\n".join(m.get("content") or "" for m in request.messages)
        match = CLAIM.search(text)
        if match:
            self.current = self.scripts[match.group(1).strip()]
        if request.system == DIRECT_SYSTEM:
            claim = text.split("\n\n")[1].strip()
            self.direct_calls.append(claim)
            return self.scripts[claim]
        return self.current

    def respond(self, request: LLMRequest, call: int = 0) -> LLMResponse:
        response = super().respond(request, call)
        script = self._script(request)
        parsed = response.parsed
        if script is None or parsed is None:
            return response
        says_true = script.label if script.right else not script.label
        if "confidence" in parsed:
            parsed["confidence"] = script.confidence
        if "grade" in parsed:
            parsed.update(
                grade="HIGH" if says_true else "FLAG",
                confirming=3 if says_true else 0,
                contradicting=0 if says_true else 1,
            )
        if request.system == DIRECT_SYSTEM:
            parsed["answer"] = "true" if says_true else "false"
        response.text = json.dumps(parsed)
        return response


def claims_dataset(scripts: list[Script]) -> tuple[Dataset, dict[str, Script]]:
    items, by_claim = [], {}
    for i, script in enumerate(scripts):
        claim = f"Claim number {i} is {'true' if script.label else 'false'}."
        by_claim[claim] = script
        items.append(
            Item(
                f"c{i:02d}",
                claim,
                "true" if script.label else "false",
                grading="choice",
                choices=["true", "false"],
            )
        )
    return Dataset("claims", items, task="Is the following claim true or false?", source="shipped"), by_claim
