"""The mode-collapse benchmark: `ganjax.programs.seeds` (this name stays for one release)."""
from ganjax.programs.seeds import HQ_TARGETS, SHOWN, run, summarize  # noqa: F401
