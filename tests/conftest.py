import os

from hypothesis import settings

os.environ.setdefault("KERAS_BACKEND", "torch")

# CI runs the same examples every time (a red run must be reproducible); locally, new ones each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
