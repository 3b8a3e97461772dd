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


def _value(node: yaml.Node, path: Path, positions: dict[Path, Position], problems: list[Problem]) -> Any:
    mark = node.start_mark
    style = getattr(node, "style", None)
    positions[path] = Position(mark.line + 1, mark.column + 1, style in ("'", '"'), style in ("|", ">"))
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _SCALAR_LOADER.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
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
            mapping[key] = _value(value_node, (*path, key), positions, problems)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, (*path, i), positions, problems) for i, item in enumerate(node.value)]
    return _SCALAR_LOADER.construct_object(node)


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
    positions: dict[Path, Position] = {}
    problems: list[Problem] = []
    data = {} if node is None else _value(node, (), positions, problems)
    return data, positions, problems
