"""The condition language of rules files: a small expression syntax, parsed into a typed tree.

    views(within=10m) >= 3 and not cart_abandoner
    country in ["DE", "AT", "CH"] and device == "mobile"
    since_last(cart) >= 30m or starts_with(path, "/sale/")

Literals: numbers, durations (`90s`, `10m`, `2h`, `1d`: seconds), strings in single or double
quotes, `true`, `false`, lists in brackets. Operators: `and`, `or`, `not`, `==`, `!=`, `<`, `<=`,
`>`, `>=`, `in`, `not in`, parentheses. Calls take positional and `name=value` arguments. Every node
keeps its offset in the source text, so that errors point at the exact column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MAX_LENGTH = 2000
MAX_DEPTH = 32
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">", "in", "not in")


class ExpressionError(ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Literal:
    value: object  # int | float | str | bool
    offset: int
    is_duration: bool = False


@dataclass(frozen=True, slots=True)
class ListOf:
    items: tuple[Literal, ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    offset: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Node
    right: Node
    offset: int


Node = Literal | ListOf | Name | Call | Not | BoolOp | Compare

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?(?P<unit>[smhd])?(?![A-Za-z0-9_]))
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|=)
""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number | string | name | op | keyword | end
    text: str
    offset: int
    value: object = None
    is_duration: bool = False


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {text[pos]!r}", pos)
        kind = match.lastgroup or ""
        word = match.group()
        if kind == "number":
            unit = match.group("unit")
            digits = word[:-1] if unit else word
            number: float = float(digits) if "." in digits else int(digits)
            if unit:
                tokens.append(_Token("number", word, pos, int(number * DURATION_UNITS[unit]), True))
            else:
                tokens.append(_Token("number", word, pos, number))
        elif kind == "string":
            body = word[1:-1]
            tokens.append(_Token("string", word, pos, re.sub(r"\\(.)", r"\1", body)))
        elif kind == "name":
            tokens.append(_Token("keyword" if word in _KEYWORDS else "name", word, pos, word))
        elif kind == "op":
            tokens.append(_Token("op", word, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def _advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _at(self, kind: str, text: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (text is None or token.text == text)

    def _expect(self, kind: str, text: str, what: str) -> _Token:
        if not self._at(kind, text):
            raise ExpressionError(
                f"expected {what}, found {self._describe(self.current)}", self.current.offset
            )
        return self._advance()

    @staticmethod
    def _describe(token: _Token) -> str:
        return "the end of the condition" if token.kind == "end" else repr(token.text)

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} levels deep", self.current.offset)

    def parse(self) -> Node:
        if self._at("end"):
            raise ExpressionError("empty condition", 0)
        node = self.or_expr()
        if not self._at("end"):
            raise ExpressionError(f"unexpected {self._describe(self.current)}", self.current.offset)
        return node

    def or_expr(self) -> Node:
        return self._bool_chain("or", self.and_expr)

    def and_expr(self) -> Node:
        return self._bool_chain("and", self.not_expr)

    def _bool_chain(self, op: str, parse_operand: Callable[[], Node]) -> Node:
        first = parse_operand()
        operands = [first]
        while self._at("keyword", op):
            self._advance()
            operands.append(parse_operand())
        return first if len(operands) == 1 else BoolOp(op, tuple(operands), _offset(first))

    def not_expr(self) -> Node:
        if self._at("keyword", "not"):
            self._deeper()
            token = self._advance()
            node = Not(self.not_expr(), token.offset)
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.atom()
        op = None
        if self._at("op") and self.current.text in ("==", "!=", "<=", ">=", "<", ">"):
            op = self._advance().text
        elif self._at("keyword", "in"):
            self._advance()
            op = "in"
        elif self._at("keyword", "not") and self.tokens[self.index + 1].text == "in":
            self.index += 2
            op = "not in"
        if op is None:
            return left
        offset = self.tokens[self.index - 1].offset
        right = self.atom()
        if self._at("op") and self.current.text in COMPARISONS or self._at("keyword", "in"):
            raise ExpressionError(
                "chained comparisons are not allowed: join them with and", self.current.offset
            )
        return Compare(op, left, right, offset)

    def atom(self) -> Node:
        token = self.current
        if token.kind == "number":
            self._advance()
            return Literal(token.value, token.offset, token.is_duration)
        if token.kind == "string":
            self._advance()
            return Literal(token.value, token.offset)
        if token.kind == "keyword" and token.text in ("true", "false"):
            self._advance()
            return Literal(token.text == "true", token.offset)
        if self._at("op", "["):
            return self.list_literal()
        if self._at("op", "("):
            self._deeper()
            self._advance()
            node = self.or_expr()
            self.depth -= 1
            self._expect("op", ")", "')'")
            return node
        if token.kind == "name":
            self._advance()
            if self._at("op", "("):
                return self.call(token)
            return Name(token.text, token.offset)
        raise ExpressionError(f"expected a value, found {self._describe(token)}", token.offset)

    def list_literal(self) -> ListOf:
        start = self._advance()
        items: list[Literal] = []
        while not self._at("op", "]"):
            token = self.current
            if token.kind not in ("number", "string"):
                raise ExpressionError(
                    f"lists hold numbers or strings, found {self._describe(token)}", token.offset
                )
            self._advance()
            items.append(Literal(token.value, token.offset, token.is_duration))
            if not self._at("op", "]"):
                self._expect("op", ",", "',' or ']'")
        self._advance()
        return ListOf(tuple(items), start.offset)

    def call(self, name: _Token) -> Call:
        self._deeper()
        self._advance()  # (
        args: list[Node] = []
        kwargs: list[tuple[str, Node]] = []
        while not self._at("op", ")"):
            if self._at("name") and self.tokens[self.index + 1].text == "=":
                key = self._advance()
                self._advance()
                if any(k == key.text for k, _ in kwargs):
                    raise ExpressionError(f"argument {key.text!r} given twice", key.offset)
                kwargs.append((key.text, self.or_expr()))
            elif kwargs:
                raise ExpressionError("positional argument after a named one", self.current.offset)
            else:
                args.append(self.or_expr())
            if not self._at("op", ")"):
                self._expect("op", ",", "',' or ')'")
        self._advance()
        self.depth -= 1
        return Call(name.text, tuple(args), tuple(kwargs), name.offset)


def _offset(node: Node) -> int:
    return node.offset


def parse_expression(text: str) -> Node:
    """Parse a condition or a call; raises ExpressionError with the offset of the problem."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH)
    return _Parser(text).parse()


def walk(node: Node) -> Iterator[Node]:
    """The node and every node inside it."""
    yield node
    if isinstance(node, ListOf):
        yield from node.items
    elif isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)
        for _, value in node.kwargs:
            yield from walk(value)
    elif isinstance(node, Not):
        yield from walk(node.operand)
    elif isinstance(node, BoolOp):
        for operand in node.operands:
            yield from walk(operand)
    elif isinstance(node, Compare):
        yield from walk(node.left)
        yield from walk(node.right)


def format_duration(seconds: int) -> str:
    for unit, size in sorted(DURATION_UNITS.items(), key=lambda kv: -kv[1]):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def source_of(node: Node) -> str:
    """The node written back as text (explanations quote it)."""
    if isinstance(node, Literal):
        if node.is_duration and isinstance(node.value, int):
            return format_duration(node.value)
        if isinstance(node.value, bool):
            return "true" if node.value else "false"
        if isinstance(node.value, str):
            return '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return str(node.value)
    if isinstance(node, ListOf):
        return "[" + ", ".join(source_of(i) for i in node.items) + "]"
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Call):
        parts = [source_of(a) for a in node.args] + [f"{k}={source_of(v)}" for k, v in node.kwargs]
        return f"{node.name}({', '.join(parts)})"
    if isinstance(node, Not):
        return f"not {source_of(node.operand)}"
    if isinstance(node, BoolOp):
        return f" {node.op} ".join(
            f"({source_of(o)})" if isinstance(o, BoolOp) else source_of(o) for o in node.operands
        )
    return f"{source_of(node.left)} {node.op} {source_of(node.right)}"
