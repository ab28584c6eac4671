"""Use cases: plain values in, a result object out, progress through a callback.

No click, no printing, no sys.exit: the CLI (and any later front end) calls these."""
