"""The phase timer the benchmarks' build scripts start with (source text: each script runs in a process of
its own with ``python -c``): ``timed(owner, name, phase)`` wraps ``owner.name`` so that its wall and
main-process CPU time add up in ``phases[phase]``."""

TIMED = """
import json, resource, sys, time
phases = {}
def timed(owner, name, phase):
    inner = getattr(owner, name)
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            w, c = phases.get(phase, (0.0, 0.0))
            phases[phase] = (w + time.perf_counter() - wall, c + time.process_time() - cpu)
    setattr(owner, name, wrapper)
"""
