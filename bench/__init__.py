"""ReasonKit benchmarks: `python -m bench` measures engine overhead, profile scheduling and CLI start-up
on this machine and writes docs/benchmarks.md. See docs/benchmarks.md for what each section measures."""
