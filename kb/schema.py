"""One pydantic model per record kind; the contract every YAML record is checked against.

Link fields hold record refs: ``kind:id``, or a bare id where the field's kind is fixed
(``goals``, ``architectures``, ``methods``, ``tools``). Fields whose kind is open
(``prerequisites``, ``see_also``, path ``steps``) take ``kind:id``; a bare id there is
resolved when exactly one record carries it.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from .refs import LINK_FIELDS, is_citekey, is_slug, parse_ref  # LINK_FIELDS: re-exported
from .vocab import ACCESS, AUDIENCES, COST_LEVELS, LEVELS, MODALITIES, SCOPES

__all__ = [
    "Level", "Record", "Method", "Architecture", "CaseStudy", "Tool", "Concept", "Topic", "Goal",
    "Path", "Tutorial", "PaperNote", "MODELS", "LINK_FIELDS", "json_schema",
]

Level = Literal[LEVELS]
Modality = Literal[MODALITIES]
Access = Literal[ACCESS]
Scope = Literal[SCOPES]
CostLevel = Literal[COST_LEVELS]
Family = Literal[
    "attribution", "feature-visualization", "probing", "information-theoretic",
    "representation-similarity", "dimensionality-reduction", "dynamical-systems", "mechanistic",
    "concept-based", "training-data-attribution", "counterfactual", "surrogate-model",
    "attention-analysis", "model-editing",
]
Domain = Literal[
    "computer-vision", "natural-language", "reinforcement-learning", "recurrent-networks",
    "board-games", "neuroscience", "multimodal", "generative-models", "tabular", "science",
    "toy-models",
]
Area = Literal[
    "information-theory", "dynamical-systems", "linear-algebra", "statistics", "machine-learning",
    "interpretability", "neuroscience", "optimization", "causality",
]
Audience = Literal[AUDIENCES]
Framework = Literal["pytorch", "tensorflow", "jax", "keras", "scikit-learn", "numpy", "any"]
Demo = Literal["mlp-tabular", "cnn-shapes", "gru-flipflop", "attn-only-transformer"]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
OneLine = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=400, pattern=r"^[^\n]*$")]


def _check_ref(value: str, default_kind: str | None) -> str:
    kind, ident = parse_ref(value, default_kind)  # raises ValueError with a readable message
    return value.strip()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)


class Record(_Strict):
    """Fields common to every kind."""

    id: str = Field(description="Slug equal to the file name: lowercase letters, digits, single hyphens.")
    name: Text = Field(description="Display name, e.g. 'Integrated Gradients'.")
    aliases: list[Text] = Field(default_factory=list, description="Other names and abbreviations people use (they feed search and query).")
    summary: Text = Field(description="One or two sentences that say what this is.")
    body: str = Field(default="", description="Markdown; may contain [[kind:id]] links and [@citekey] citations.")
    papers: list[str] = Field(default_factory=list, description="Citekeys of papers in bib/*.bib.")
    level: Level = Field(description="Who it is written for: beginner | intermediate | advanced.")
    see_also: list[str] = Field(default_factory=list, description="Related records as kind:id.")

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not is_slug(v):
            raise ValueError(f"{v!r} is not a slug (lowercase letters, digits and single hyphens)")
        return v

    @field_validator("papers")
    @classmethod
    def _citekeys(cls, v: list[str]) -> list[str]:
        for key in v:
            if not is_citekey(key):
                raise ValueError(f"{key!r} is not a citekey")
        return v

    @field_validator("see_also")
    @classmethod
    def _see_also(cls, v: list[str]) -> list[str]:
        return [_check_ref(x, None) for x in v]


def _refs_validator(field: str, kind: str | None):
    def check(cls, v):
        return [_check_ref(x, kind) for x in v]
    return field_validator(field)(classmethod(check))


class Cost(_Strict):
    level: CostLevel = Field(description="low | medium | high")
    note: Text = Field(description="What it costs, in forward/backward passes or training runs.")


class ToolUse(_Strict):
    tool: str = Field(description="Tool id (content/tool/<id>.yaml).")
    api: Text = Field(description="The tool's own API name, e.g. captum.attr.IntegratedGradients.")


class MethodUse(_Strict):
    method: str = Field(description="Method id.")
    why: Text = Field(description="Why this method, in one or two sentences.")


class Method(Record):
    """An interpretability method."""

    family: Family
    goals: list[str] = Field(default_factory=list, description="Goal ids this method serves.")
    architectures: list[str] = Field(default_factory=list, description="Architecture ids it applies to (empty: architecture-agnostic).")
    modalities: list[Modality] = Field(min_length=1)
    access: Access = Field(description="The least access to the model it needs.")
    scope: Scope
    cost: Cost
    when_to_use: list[Text] = Field(min_length=1)
    when_not_to_use: list[Text] = Field(min_length=1)
    assumptions: list[Text] = Field(default_factory=list)
    pitfalls: list[Text] = Field(min_length=1)
    implementation_notes: str = ""
    prerequisites: list[str] = Field(default_factory=list, description="Records to know first, as kind:id.")
    introduced_by: str | None = Field(default=None, description="Citekey of the paper that introduced it.")
    tools: list[ToolUse] = Field(default_factory=list)
    reference: str | None = Field(default=None, description="kb.reference.<module>:<function>, or null while unwritten.")
    example: str = Field(default="", description="A short runnable snippet.")

    _goals = _refs_validator("goals", "goal")
    _archs = _refs_validator("architectures", "architecture")
    _prereq = _refs_validator("prerequisites", None)

    @field_validator("reference")
    @classmethod
    def _reference_shape(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import re

        if not re.fullmatch(r"kb\.reference(\.[a-z_][a-z0-9_]*)+:[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError("must look like kb.reference.<module>:<function> (only kb.reference is allowed)")
        return v


class Architecture(Record):
    family: Literal["feedforward", "convolutional", "recurrent", "attention", "generative", "graph"]
    modalities: list[Modality] = Field(default_factory=list, description="Inputs this architecture usually takes (a question naming it implies them).")
    parent: str | None = Field(default=None, description="Architecture id this one specialises (gru -> rnn).")
    components: list[str] = Field(default_factory=list, description="Architecture ids used inside this one as "
                                  "blocks (transformer -> feedforward): 'the MLP neurons of GPT-2' is about GPT-2.")
    considerations: list[Text] = Field(min_length=1)
    common_findings: list[Text] = Field(min_length=1)
    recommended_methods: list[MethodUse] = Field(min_length=1)
    tools: list[str] = Field(default_factory=list)

    _tools = _refs_validator("tools", "tool")


class Reproduction(_Strict):
    test: Text = Field(description="pytest node id that reproduces the claim, e.g. tests/reference/test_x.py::test_y")
    shows: Text = Field(description="What the reproduction must show.")
    run: str | None = Field(default=None, description="kb.reference.reproductions.<module>:run, the function `kb reproduce` "
                            "calls (seed -> claim, measured numbers, tolerance, passed); null when only the test reproduces it.")
    measured: Text | None = Field(default=None, description="What the full run (`kb reproduce <id>`, seed 0) measured, "
                                  "with its numbers and the tolerance, including what did not reproduce.")

    @field_validator("run")
    @classmethod
    def _run_shape(cls, v: str | None) -> str | None:
        import re

        if v is not None and not re.fullmatch(r"kb\.reference\.reproductions\.[a-z_][a-z0-9_]*:run", v):
            raise ValueError("must look like kb.reference.reproductions.<module>:run (only kb.reference is allowed)")
        return v


class CaseStudy(Record):
    domain: Domain
    architectures: list[str] = Field(default_factory=list)
    methods: list[str] = Field(min_length=1)
    problem: Text
    approach: Text
    findings: list[Text] = Field(min_length=1)
    relevance: Text
    implementation_notes: str = ""
    reproduction: Reproduction | None = None

    _archs = _refs_validator("architectures", "architecture")
    _methods = _refs_validator("methods", "method")


class Implements(_Strict):
    method: str
    api: Text


class Tool(Record):
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    framework: list[Framework] = Field(min_length=1)
    install: Text
    implements: list[Implements] = Field(default_factory=list)
    strengths: list[Text] = Field(min_length=1)
    gotchas: list[Text] = Field(min_length=1)
    quick_start: Text


class Implies(_Strict):
    """What a question that names this concept (or one of its aliases) tells the query about the user."""

    modality: Modality | None = None
    access: Access | None = None
    scope: Scope | None = None
    budget: CostLevel | None = Field(default=None, description="The compute budget the words signal.")


class Concept(Record):
    area: Area
    definition: OneLine = Field(description="One line for the glossary.")
    prerequisites: list[str] = Field(default_factory=list)
    implies: Implies | None = Field(default=None, description="Query facets this concept's words signal, e.g. modality: image for 'x-ray'.")

    _prereq = _refs_validator("prerequisites", None)


class Topic(Record):
    questions: list[Text] = Field(min_length=1, description="Open problems.")
    prerequisites: list[str] = Field(default_factory=list)

    _prereq = _refs_validator("prerequisites", None)


class Goal(Record):
    phrasings: list[Text] = Field(min_length=2, description="Ways people ask for this.")
    recommended: list[MethodUse] = Field(min_length=1, description="Methods in order of recommendation.")
    follow_ups: list[str] = Field(default_factory=list, description="Goals or records to look at next.")

    _follow = _refs_validator("follow_ups", None)


class Step(_Strict):
    ref: str
    note: Text

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str) -> str:
        return _check_ref(v, None)


class Path(Record):
    audience: Audience
    steps: list[Step] = Field(min_length=1)


class Cell(_Strict):
    text: str | None = Field(default=None, description="A Markdown cell.")
    code: str | None = Field(default=None, description="A Python cell; may import only kb.reference and the standard scientific stack.")

    def model_post_init(self, __context: Any) -> None:
        if (self.text is None) == (self.code is None):
            raise ValueError("a step is either text: or code:, exactly one of them")


class Expectation(_Strict):
    check: Text = Field(description="A Python expression, true when the tutorial shows what it claims.")
    says: Text = Field(description="What the check means, in words.")


class Tutorial(Record):
    methods: list[str] = Field(default_factory=list)
    architectures: list[str] = Field(default_factory=list)
    demo: Demo | None = None
    steps: list[Cell] = Field(min_length=1)
    expect: list[Expectation] = Field(default_factory=list)

    _methods = _refs_validator("methods", "method")
    _archs = _refs_validator("architectures", "architecture")


class PaperNote(_Strict):
    """content/paper/<citekey>.yaml: what a reader should know about a paper in bib/."""

    id: str
    summary: Text
    why_it_matters: Text
    key: bool = Field(default=False, description="A must-read.")
    topics: list[str] = Field(default_factory=list, description="Records this paper is about, as kind:id.")
    level: Level = "intermediate"

    @field_validator("id")
    @classmethod
    def _key(cls, v: str) -> str:
        if not is_citekey(v):
            raise ValueError(f"{v!r} is not a citekey")
        return v

    _topics = _refs_validator("topics", None)


MODELS: dict[str, type[_Strict]] = {
    "method": Method, "architecture": Architecture, "case_study": CaseStudy, "tool": Tool,
    "concept": Concept, "topic": Topic, "goal": Goal, "path": Path, "tutorial": Tutorial,
    "paper": PaperNote,
}



def json_schema() -> dict:
    """JSON Schema of every kind, keyed by kind, for editors' YAML language servers."""
    return {kind: model.model_json_schema() for kind, model in MODELS.items()}
