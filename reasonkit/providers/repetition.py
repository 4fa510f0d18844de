"""Stop a reply that is repeating itself while it is generated.

Small models (SmolLM2-135M) in JSON mode can fall into a loop: the same phrase or the same list
item again and again until `max_tokens` (3,000 tokens and 100-170 s per step against
llama-cpp-python's server). Nothing useful comes after the loop starts, so the providers that see
the reply as it is generated (the embedded model's token loop, a streamed OpenAI-compatible reply)
feed it to a `RepetitionGuard` and stop the call when it trips; the reply is then marked
`stop_reason="repetition"` and the engine keeps the complete part of the JSON with a note.

The rule: the reply is split into words (JSON punctuation and quotes do not count, so field names
between varying values do not make a loop); among the last `window` words, an `n`-word sequence
seen `repeats` times is a loop. A list of distinct items shares at most a field name or two per
item, far from 8 words in a row; a loop repeats whole phrases.
"""

from __future__ import annotations

import re
from collections import Counter, deque

WORD = re.compile(r"\w+")
NGRAM = 8  # words in a row
REPEATS = 4  # times the same n-gram may be seen within the window before the reply is cut
WINDOW = 300  # words


class RepetitionGuard:
    """Feed it the reply piece by piece (`feed`); `tripped` turns true once the reply loops."""

    def __init__(self, n: int = NGRAM, repeats: int = REPEATS, window: int = WINDOW):
        self.n, self.repeats, self.window = n, repeats, window
        self.tripped = False
        self._pending = ""  # the text after the last complete word (a word may go on in the next piece)
        self._words: deque[str] = deque(maxlen=n)
        self._grams: deque[tuple[str, ...]] = deque()
        self._counts: Counter[tuple[str, ...]] = Counter()

    def feed(self, text: str) -> bool:
        """Add the next piece of the reply; returns `tripped`."""
        if self.tripped or not text:
            return self.tripped
        self._pending += text
        words = list(WORD.finditer(self._pending))
        if words and words[-1].end() == len(self._pending):
            words.pop()  # still growing
        if not words:
            return False
        self._pending = self._pending[words[-1].end() :]
        for match in words:
            self._add(match.group().lower())
        return self.tripped

    def _add(self, word: str) -> None:
        self._words.append(word)
        if len(self._words) < self.n:
            return
        gram = tuple(self._words)
        self._grams.append(gram)
        self._counts[gram] += 1
        if len(self._grams) > self.window:
            old = self._grams.popleft()
            self._counts[old] -= 1
            if not self._counts[old]:
                del self._counts[old]
        if self._counts[gram] >= self.repeats:
            self.tripped = True
