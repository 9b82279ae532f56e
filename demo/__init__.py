"""The demos: `make demo` runs `python -m demo.run_demo` from the repository root."""
