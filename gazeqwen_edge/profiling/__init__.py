"""Latency profiling (`gazeqwen-edge profile`): every stage of a session timed, memory, decode bandwidth utilisation
against device presets, Jetson power and clocks, a versioned JSON report, an HTML report with plots, and compare."""
