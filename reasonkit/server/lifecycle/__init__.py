"""Running the server: stdio or HTTP with a graceful drain (serve.py), and several worker processes
on one port (workers.py). The top of `reasonkit.server`: it assembles the rooms below."""
