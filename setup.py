"""Build hook: the wheel carries the handbook. content/, bib/ and templates/ stay at the top of the
repository (where authors edit them) and are copied into the package as kb/_handbook/ when it is
built, so `pip install interp-kb` brings a knowledge base to ask from any folder (see kb.config)."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
HANDBOOK = ("content", "bib", "templates")
SKIP = shutil.ignore_patterns(".*", "__pycache__", "*.pyc", "*.tmp")


class BuildWithHandbook(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's own folders (kb.config.bundled_root)
        target = Path(self.build_lib) / "kb" / "_handbook"
        shutil.rmtree(target, ignore_errors=True)
        for name in HANDBOOK:
            source = HERE / name
            if not source.is_dir():
                raise SystemExit(f"cannot build interp-kb: {source} is missing")
            shutil.copytree(source, target / name, ignore=SKIP)


setup(cmdclass={"build_py": BuildWithHandbook})
