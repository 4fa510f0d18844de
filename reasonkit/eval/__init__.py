"""`rk eval`: measure what a ThinkTool's confidence is worth on labelled items.

datasets.py (shipped sets, reasoning-gym, user JSONL) -> harness.py (each item through the run
service, and the direct one-call baseline; per-item JSONL, resumable) -> grading.py (the short final
answer and the graders) -> metrics.py (accuracy, ECE, Brier, AUROC, selective accuracy) ->
calibrate.py (`rk eval fit`: isotonic breakpoints for reasonkit/engine/calibration.py) and
report.py (`rk eval report`: markdown and a reliability diagram). docs/calibration.md has the
measurements and how to run them.
"""
