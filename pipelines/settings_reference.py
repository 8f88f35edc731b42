"""The configuration reference, docs/configuration.md, generated from the settings models so that it cannot drift:
every setting with its type, default, limits and description (a field's `description`, else the comment beside or
above it in pipelines/settings.py).

    python -m pipelines.settings_reference > docs/configuration.md
"""

import ast
import inspect
import io
import json
import tokenize
import typing
from pathlib import Path

from pydantic import BaseModel

from pipelines import settings

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
LIMITS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "pattern": "matches", "max_length": "length ≤"}


def _comments(source: str) -> dict[int, str]:
    """Line number -> the comment on that line, in a source text."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0]: token.string.lstrip("# ") for token in tokens if token.type == tokenize.COMMENT}


def _field_sources(model: type[BaseModel]) -> dict[str, tuple[ast.AnnAssign, str]]:
    """Each field of the model's class body: its statement, and the comments beside and just above it."""
    source = inspect.getsource(model)
    comments, lines = _comments(source), source.splitlines()
    found = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above, line = [], node.lineno - 1
            while line >= 1 and lines[line - 1].strip().startswith("#"):
                above.insert(0, comments[line])
                line -= 1
            beside = [comments[node.lineno]] if node.lineno in comments else []
            found[node.target.id] = (node, " ".join(above + beside))
    return found


def _models_in(annotation) -> list[type[BaseModel]]:
    """The settings models an annotation holds (`Source` -> the synthetic and the file source)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _default(field, node: ast.AnnAssign, source: str) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    try:
        return f"`{json.dumps(value, ensure_ascii=False, default=_plain)}`"
    except TypeError:  # a path built from the data folder: as written
        return f"`{ast.get_source_segment(source, node.value)}`"


def _plain(value):
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(value)


def _limits(node: ast.AnnAssign, source: str) -> str:
    """`Field(…, ge=0, le=23)` -> `≥ 0, ≤ 23`, as the field is written."""
    call = node.value
    if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Field"):
        return ""
    return ", ".join(
        f"{LIMITS[k.arg]} {ast.get_source_segment(source, k.value)}" for k in call.keywords if k.arg in LIMITS
    )


def _heading(path: str, model: type[BaseModel]) -> str:
    r"""`## \`source\` (kind: file)`: a source's kind names which of the models is meant."""
    if not path:
        return "## Top level"
    kind = model.model_fields.get("kind")
    if kind is not None and typing.get_origin(kind.annotation) is typing.Literal:
        return f"## `{path}` (kind: {typing.get_args(kind.annotation)[0]})"
    return f"## `{path}`"


def model_section(path: str, model: type[BaseModel]) -> tuple[list[str], list[tuple[str, type[BaseModel]]]]:
    """The Markdown of one settings model at `path`, and the nested models to describe after it."""
    source = inspect.getsource(model)
    fields = _field_sources(model)
    doc = inspect.cleandoc(model.__doc__) if model.__doc__ else ""
    lines = [_heading(path, model), "", *([doc.replace("\n", " "), ""] if doc else [])]
    lines += ["| setting | type | default | limits | description |", "|---|---|---|---|---|"]
    nested = []
    for name, field in model.model_fields.items():
        node, comment = fields[name]
        kind = ast.get_source_segment(source, node.annotation).replace("|", "\\|")
        description = (field.description or comment).replace("|", "\\|")
        lines.append(
            f"| `{name}` | `{kind}` | {_default(field, node, source)} | {_limits(node, source)} | {description} |"
        )
        nested += [(f"{path}.{name}".lstrip("."), sub) for sub in _models_in(field.annotation)]
    return lines + [""], nested


def reference() -> str:
    """docs/configuration.md: the shop's settings file, model by model, top level first."""
    out = [
        "# Configuration reference",
        "",
        "A shop is one YAML file (`shop.yaml` is the demo shop). This page is generated from the settings models",
        "in `pipelines/settings.py` by `python -m pipelines.settings_reference > docs/configuration.md`; a test",
        "compares it with them. A nested setting is written nested: `operations.owners` is `owners:` under",
        "`operations:`.",
        "",
    ]
    pending = [("", settings.ShopSettings)]
    while pending:  # each model, then the models nested in it
        lines, nested = model_section(*pending.pop(0))
        out += lines
        pending = nested + pending
    return "\n".join(out)


if __name__ == "__main__":
    print(reference(), end="")
