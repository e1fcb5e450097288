"""METHOD_REFERENCES and __all__: every reference is a top-level def of the named module."""

import ast
import pathlib

import kb.reference as reference

REFERENCE_DIR = pathlib.Path(reference.__file__).parent
REQUIRED = """saliency-maps gradient-x-input smoothgrad integrated-gradients grad-cam occlusion lime shap lrp
deeplift guided-backprop activation-maximization deepdream linear-probes causal-probing mutual-information
pca tsne umap phate cka svcca rsa manifold-geometry fixed-point-analysis trajectory-analysis
attractor-landscapes circuit-analysis sparse-autoencoders activation-patching attention-pattern-analysis
attention-rollout logit-lens tuned-lens path-patching causal-tracing ablation tcav""".split()


def _top_level_defs(module: str) -> set[str]:
    tree = ast.parse((REFERENCE_DIR / f"{module}.py").read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_method_id_has_a_reference():
    assert set(REQUIRED) <= set(reference.METHOD_REFERENCES)


def test_references_are_top_level_defs():
    for method, ref in reference.METHOD_REFERENCES.items():
        path, function = ref.split(":")
        package, module = path.rsplit(".", 1)
        assert package == "kb.reference", method
        assert function in _top_level_defs(module), f"{method}: {ref} is not a top-level def"


def test_references_cite_their_paper():
    import importlib
    for method, ref in reference.METHOD_REFERENCES.items():
        module, function = ref.split(":")
        doc = getattr(importlib.import_module(module), function).__doc__
        assert doc and "[@" in doc, f"{ref} has no [@citekey] in its docstring"


def test_public_names_are_exported():
    for name in reference.__all__:
        assert hasattr(reference, name), name
    assert len(set(reference.__all__)) == len(reference.__all__)


def _imports(path: pathlib.Path) -> set[str]:
    """Top-level package names a module imports anywhere (module level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_demo_package_imports_matplotlib():
    # kb.reference.demo imports it once, in demo/_registry.py (Agg backend), and kb run imports the package
    # lazily; the other demo modules draw through _registry's plt. The reproductions draw their figures
    # through reproductions/_base.py, which imports it lazily (inside the function that draws).
    allowed = {"demo/_registry.py", "reproductions/_base.py"}
    for path in REFERENCE_DIR.rglob("*.py"):
        name = path.relative_to(REFERENCE_DIR).as_posix()
        if name in allowed:
            continue
        assert "matplotlib" not in _imports(path), name
        if not name.startswith("demo/"):  # outside the demo package not even a mention
            assert "matplotlib" not in path.read_text(), name
