"""Reading a rules file: YAML into plain values, remembering where each value was written.

Problems found later (an unknown segment, a bad condition) are reported at the line and column of
the value they concern, so every value's position is kept under its path in the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based
    quoted: bool = False  # a quoted scalar: its text starts one column further right
    block: bool = False  # a literal or folded block: its text starts on the next line


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    message: str
    line: int = 0  # 0: not from a file (rules received as JSON)
    column: int = 0

    def __str__(self) -> str:
        where = "/".join(str(p) for p in self.path) or "(top)"
        if self.line:
            return f"{self.line}:{self.column}: {where}: {self.message}"
        return f"{where}: {self.message}"


class RulesSyntaxError(ValueError):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


_SCALAR_LOADER = yaml.SafeLoader("")
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Walk:
    """Every node is visited once: a node met twice is an alias, refused (no alias bombs, no cycles)."""

    def __init__(self) -> None:
        self.positions: dict[Path, Position] = {}
        self.problems: list[Problem] = []
        self.seen: set[int] = set()


def _value(node: yaml.Node, path: Path, walk: _Walk) -> Any:
    positions, problems = walk.positions, walk.problems
    mark = node.start_mark
    if id(node) in walk.seen:
        problems.append(
            Problem(
                path, "anchors and aliases are not allowed in rules files", mark.line + 1, mark.column + 1
            )
        )
        return None
    walk.seen.add(id(node))
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
        problems.append(Problem(path, f"not a plain value: tag {node.tag!r}", mark.line + 1, mark.column + 1))
        return None
    style = getattr(node, "style", None)
    positions[path] = Position(mark.line + 1, mark.column + 1, style in ("'", '"'), style in ("|", ">"))
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, path, problems) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                problems.append(
                    Problem(
                        path,
                        "keys must be plain names",
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                    )
                )
                continue
            if key in mapping:
                problems.append(
                    Problem(
                        (*path, key),
                        f"{key!r} is given twice",
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                    )
                )
                continue
            mapping[key] = _value(value_node, (*path, key), walk)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, (*path, i), walk) for i, item in enumerate(node.value)]
    return _scalar(node, path, problems)


def _scalar(node: yaml.Node, path: Path, problems: list[Problem]) -> Any:
    try:
        return _SCALAR_LOADER.construct_object(node)
    except yaml.YAMLError as exc:  # e.g. a tag of its own: `!python/object`
        mark = node.start_mark
        problems.append(
            Problem(
                path, f"not a plain value: {getattr(exc, 'problem', exc)}", mark.line + 1, mark.column + 1
            )
        )
        return None


def load_yaml(text: str) -> tuple[Any, dict[Path, Position], list[Problem]]:
    """Plain values, their positions, and structural problems (duplicate or non-string keys).
    A file that is not YAML at all raises RulesSyntaxError with the parser's position."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        raise RulesSyntaxError(Problem((), f"not valid YAML: {exc.problem}", line, column)) from None
    except yaml.YAMLError as exc:
        raise RulesSyntaxError(Problem((), f"not valid YAML: {exc}")) from None
    walk = _Walk()
    data = {} if node is None else _value(node, (), walk)
    return data, walk.positions, walk.problems
