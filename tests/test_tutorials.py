"""Tutorials run: every record's code cells execute in order and its expectations hold; `kb notebook`
writes valid notebooks (one executed end to end by a Jupyter kernel); `kb run` writes a figure and a reading."""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kb.cli import cli
from kb.schema import Tutorial

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings(  # matplotlib converting torch tensors with np.array(copy=False)
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

REPO = Path(__file__).resolve().parent.parent
TUTORIAL_FILES = sorted((REPO / "content" / "tutorial").glob("*.yaml"))
TUTORIALS = {p.stem: Tutorial(**yaml.safe_load(p.read_text(encoding="utf-8"))) for p in TUTORIAL_FILES}
ALLOWED_IMPORTS = {"kb", "torch", "numpy", "matplotlib"} | set(sys.stdlib_module_names)
SEED_HANDBOOK = {"linear-probes-tutorial", "grad-cam-heatmaps", "phate-training-trajectories",
                 "mutual-information-neurons", "fixed-points-attractors", "attention-patterns",
                 "activation-patching-tutorial", "visualization-recipes", "experimental-design"}


def code_steps(tutorial: Tutorial) -> list[str]:
    return [step.code for step in tutorial.steps if step.code is not None]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Figures go to a fresh temporary folder; torch's thread count is restored afterwards."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    threads = torch.get_num_threads()
    yield tmp_path
    torch.set_num_threads(threads)


def test_the_seed_handbook_tutorials_exist():
    assert SEED_HANDBOOK <= set(TUTORIALS)


@pytest.mark.parametrize("ident", sorted(TUTORIALS))
def test_tutorial_imports_only_the_reference_stack(ident):
    for i, code in enumerate(code_steps(TUTORIALS[ident])):
        for node in ast.walk(ast.parse(code)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                assert name.split(".")[0] in ALLOWED_IMPORTS, f"{ident} step {i}: imports {name}"
                if name.split(".")[0] == "kb":
                    assert name == "kb.reference" or name.startswith("kb.reference."), f"{ident} step {i}: {name}"


@pytest.mark.parametrize("ident", sorted(TUTORIALS))
def test_tutorial_is_linked_from_one_of_its_methods(ident):
    ref = f"tutorial:{ident}"
    linked = []
    for method in TUTORIALS[ident].methods:
        record = yaml.safe_load((REPO / "content" / "method" / f"{method}.yaml").read_text(encoding="utf-8"))
        linked += [m for m in record.get("see_also") or [] if m == ref]
    others = [p for p in TUTORIALS if ref in TUTORIALS[p].see_also]
    assert linked or others, f"no method or tutorial links to {ref}"


@pytest.mark.slow
@pytest.mark.parametrize("ident", sorted(TUTORIALS))
def test_tutorial_runs_and_shows_what_it_claims(ident, isolated):
    tutorial = TUTORIALS[ident]
    namespace: dict = {"__name__": "__main__"}
    for i, code in enumerate(code_steps(tutorial)):
        exec(compile(code, f"<tutorial {ident}, code cell {i + 1}>", "exec"), namespace)  # noqa: S102
    assert tutorial.expect, f"{ident} has no expectations"
    for exp in tutorial.expect:
        assert bool(eval(exp.check, namespace)), f"{ident}: {exp.says} (failed: {exp.check})"  # noqa: S307


# -- kb notebook -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kb_root(tmp_path_factory) -> Path:
    """A copy of the real content and bibliography, so building the store never touches the repository
    (tests/ is linked: validation checks that case studies' reproduction tests exist)."""
    root = tmp_path_factory.mktemp("kb")
    shutil.copytree(REPO / "content", root / "content")
    shutil.copytree(REPO / "bib", root / "bib")
    (root / "tests").symlink_to(REPO / "tests", target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def notebooks(kb_root, tmp_path_factory) -> dict[str, Path]:
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("notebooks")
    paths = {}
    for ident in sorted(TUTORIALS):
        result = CliRunner().invoke(cli, ["--root", str(kb_root), "notebook", ident, "--out", str(out)])
        assert result.exit_code == 0, result.output
        paths[ident] = Path(result.stdout.strip())  # the path alone on stdout; how to run it on stderr
        assert f"jupyter execute {paths[ident]}" in result.stderr and "jupyter lab" in result.stderr
    return paths


@pytest.mark.parametrize("ident", sorted(TUTORIALS))
def test_notebook_is_valid_and_carries_the_steps(ident, notebooks):
    nbformat = pytest.importorskip("nbformat")
    path = notebooks[ident]
    assert path.name == f"{ident}.ipynb" and path.exists()
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert [c.strip() for c in code[:-1]] == [s.strip() for s in code_steps(TUTORIALS[ident])]
    assert nb.cells[0].source.startswith(f"# {TUTORIALS[ident].name}")
    checks = code[-1]
    for exp in TUTORIALS[ident].expect:
        assert f"assert {exp.check}, {exp.says!r}" in checks
    assert "[[" not in "".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_show_prints_a_tutorial_as_numbered_steps_with_their_code(kb_root):
    """Issue 14: `kb show tutorial:...` reads like the tutorial, not like a dump of its cells."""
    from click.testing import CliRunner

    out = CliRunner().invoke(cli, ["--root", str(kb_root), "show", "tutorial:grad-cam-heatmaps"]).stdout
    assert "code: None" not in out and "text: None" not in out and "- code:" not in out
    steps = re.findall(r"(?m)^ ?(\d+)\. ", out.split("Steps (as a notebook")[1])
    assert steps[:3] == ["1", "2", "3"], out
    first_code = next(s for s in TUTORIALS["grad-cam-heatmaps"].steps if s.code).code.strip().splitlines()[0]
    assert "\n        " + first_code in out  # code indented under its step
    assert "What a run must show" in out and TUTORIALS["grad-cam-heatmaps"].expect[0].says.split()[0] in out
    md = CliRunner().invoke(cli, ["--root", str(kb_root), "show", "tutorial:grad-cam-heatmaps", "--format", "markdown"])
    assert "```python" in md.stdout and "## Steps" in md.stdout


def test_notebook_refuses_other_kinds_and_unknown_ids(kb_root, tmp_path):
    from click.testing import CliRunner

    runner = CliRunner()
    wrong = runner.invoke(cli, ["--root", str(kb_root), "notebook", "method:grad-cam", "--out", str(tmp_path)])
    assert wrong.exit_code == 1 and "not a tutorial" in wrong.output and "Traceback" not in wrong.output
    missing = runner.invoke(cli, ["--root", str(kb_root), "notebook", "no-such-tutorial", "--out", str(tmp_path)])
    assert missing.exit_code == 1 and "no record" in missing.output
    assert not list(tmp_path.glob("*.ipynb"))


def _ensure_python3_kernel() -> None:
    """Install the python3 kernelspec into this environment if Jupyter cannot find one (idempotent)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix"], check=True,
                       capture_output=True, timeout=120)


@pytest.mark.slow
def test_generated_notebook_executes_end_to_end(notebooks, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    _ensure_python3_kernel()
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's figures land here
    nb = nbformat.read(str(notebooks["phate-training-trajectories"]), as_version=4)
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    last = nb.cells[-1]
    assert last.cell_type == "code" and last.get("id") == "checks"
    assert any("all checks passed" in out.get("text", "") for out in last.outputs)
    assert (tmp_path / "kb-tutorials" / "training-trajectories.png").exists()


# -- kb run ------------------------------------------------------------------------------------------

def test_run_list(runner):
    result = runner.invoke(cli, ["run", "--list", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    methods = {r["method"]: r for r in rows}
    assert {"saliency-maps", "grad-cam", "fixed-point-analysis", "activation-patching"} <= set(methods)
    assert all(set(r) >= {"method", "model", "description", "available"} for r in rows)
    text = runner.invoke(cli, ["run", "--list"])
    assert text.exit_code == 0 and "saliency-maps\tshapes-cnn" in text.output


def test_run_writes_a_figure_and_a_reading(runner, tmp_path):
    result = runner.invoke(cli, ["run", "saliency-maps", "--out", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    figure = Path(answer["figure"])
    assert figure.parent == tmp_path and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(answer["reading"]) > 100 and "mass_on_shape" in answer["metrics"]
    text = runner.invoke(cli, ["run", "method:saliency-maps", "--out", str(tmp_path)])
    assert text.exit_code == 0 and text.output.startswith(f"figure: {figure}")
    assert "attribution mass" in text.output


def test_run_misuse_and_unknown_methods(runner, tmp_path):
    assert runner.invoke(cli, ["run"]).exit_code == 2
    unknown = runner.invoke(cli, ["run", "no-such-method", "--out", str(tmp_path)])
    assert unknown.exit_code == 1 and "kb run --list" in unknown.output


@pytest.mark.parametrize("argv, missing", [(["run", "saliency-maps"], "torch")])
def test_missing_extra_says_how_to_install_it(argv, missing, kb_root, tmp_path):
    code = (f"import sys; sys.modules[{missing!r}] = None\n"
            f"from kb.cli import main; sys.argv = ['kb', '--root', {str(kb_root)!r}, *{argv!r}, '--out', {str(tmp_path)!r}]\n"
            "main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "pip install 'interp-kb[reference]'" in proc.stderr and "Traceback" not in proc.stderr


def test_figures_are_drawn_once_and_redrawn_only_when_forced(runner, tmp_path):
    args = ["--root", str(REPO), "figures", "grad-cam", "--out", str(tmp_path), "--format", "json"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["written"] == ["method:grad-cam"]
    meta = json.loads((tmp_path / "method" / "grad-cam.json").read_text())
    assert (tmp_path / "method" / "grad-cam.png").stat().st_size > 1000 and meta["reading"] and meta["digest"]
    again = json.loads(runner.invoke(cli, args).output)
    assert again["kept"] == ["method:grad-cam"] and again["written"] == []
    forced = json.loads(runner.invoke(cli, [*args, "--force"]).output)
    assert forced["written"] == ["method:grad-cam"]
