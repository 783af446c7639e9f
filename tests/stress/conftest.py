"""The stress tests (make stress) run with the fixtures and helpers of
tests/fs: its conftest.py is loaded here under another module name and
everything in it is re-exported, so `from conftest import ...` and the
fixtures (make_mount, mounted, ...) work the same in both folders."""

import importlib.util
import sys
from pathlib import Path

FS_TESTS = Path(__file__).resolve().parent.parent / "fs"
if str(FS_TESTS) not in sys.path:
    sys.path.insert(0, str(FS_TESTS))

_spec = importlib.util.spec_from_file_location("secretsfs_fs_conftest",
                                               FS_TESTS / "conftest.py")
_fs = importlib.util.module_from_spec(_spec)
sys.modules["secretsfs_fs_conftest"] = _fs
_spec.loader.exec_module(_fs)

globals().update({k: v for k, v in vars(_fs).items()
                  if not (k.startswith("__") and k.endswith("__"))})
