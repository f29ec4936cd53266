"""The kernel boundary: bpf(), perf_event_open(), perf ioctls, tracefs. See the submodules."""
