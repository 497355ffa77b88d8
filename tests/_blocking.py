"""A prelude for child processes of the tests: imports of some packages fail, as on an install without them."""


def blocking(*packages: str) -> str:
    """Python source to run first in a child process: importing any of ``packages`` (or their submodules) raises
    ``ModuleNotFoundError`` naming the module, as when the package is not installed."""
    return f"""
import sys

class _Blocked:
    PACKAGES = {tuple(packages)!r}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.PACKAGES:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked in this test)", name=name)
        return None

sys.meta_path.insert(0, _Blocked())
"""
