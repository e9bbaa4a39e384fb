"""The textual query syntax of ``limnos ds query``, parsed without ``eval``.

    episode > 5 and has_yoda == true
    (label == "cat" or label == 'dog') and not path startswith "test/"
    size >= 1e6 and content_type in ["image/png", "image/jpeg"]
    note is null or score is not null
    `odd field name` != 3

Grammar (keywords are case-insensitive)::

    query      := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" or ")" | test
    test       := FIELD ("==" | "=" | "!=" | "<" | "<=" | ">" | ">=") VALUE
                | FIELD ("contains" | "startswith" | "endswith") STRING
                | FIELD ["not"] "in" "[" VALUE ("," VALUE)* "]"
                | FIELD "is" ["not"] "null"
    VALUE      := NUMBER | STRING | true | false
    FIELD      := a name of letters, digits, _ . - / (not starting with a digit), or `any text`

A datetime field is compared with an ISO string: ``modified > "2024-01-01"``.
A tokenizer turns the text into tokens and a recursive-descent parser builds
the same :class:`~limnos.datasources.query.Condition` objects that ``ds["f"] > 5`` does.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import QuerySyntaxError
from .query import And, Condition, Leaf, Not, Or

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<quoted>`[^`]*`)
  | (?P<op>==|!=|<=|>=|=|<|>)
  | (?P<punct>[()\[\],])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.\-/]*)
""", re.VERBOSE)
KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false", "contains", "startswith", "endswith"}
_OPS = {"==": "eq", "=": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
#: How deep parentheses and ``not`` may nest: the parser recurses once per level, and so do the
#: query compiler and the database after it; no hand-written query comes near this.
MAX_DEPTH = 64


@dataclass(frozen=True)
class Token:
    """One token of a textual query: its kind, its text, where it starts and its value (numbers, strings, fields)."""

    kind: str  # number | string | field | op | punct | keyword | end
    text: str
    pos: int
    value: Any = None


def tokenize(text: str) -> list[Token]:
    """The tokens of a textual query, ending with an ``end`` token.

    Raises:
        QuerySyntaxError: a character or escape is not part of the syntax.
    """
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _error(text, pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        raw = m.group()
        if kind == "number":
            try:
                value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
            except ValueError:  # Python refuses to convert ints of thousands of digits
                raise _error(text, pos, "a number with too many digits") from None
            tokens.append(Token("number", raw, pos, value))
        elif kind == "string":
            tokens.append(Token("string", raw, pos, _unescape(raw[1:-1], text, pos)))
        elif kind == "quoted":
            if len(raw) == 2:
                raise _error(text, pos, "an empty `field name`")
            tokens.append(Token("field", raw, pos, raw[1:-1]))
        elif kind == "word":
            lowered = raw.lower()
            if lowered in KEYWORDS:
                tokens.append(Token("keyword", lowered, pos))
            else:
                tokens.append(Token("field", raw, pos, raw))
        elif kind in ("op", "punct"):
            tokens.append(Token(kind, raw, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _unescape(body: str, text: str, pos: int) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise _error(text, pos + i + 1, f"unknown escape '\\{nxt}' in a string")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _error(text: str, pos: int, what: str) -> QuerySyntaxError:
    near = text[pos : pos + 20] or "the end"
    shown = text if len(text) <= 200 else text[:200] + "..."
    return QuerySyntaxError(f"{what} at column {pos + 1} (near {near!r}) in query {shown!r}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.text in words

    def expect_punct(self, ch: str) -> None:
        if self.tok.kind != "punct" or self.tok.text != ch:
            raise self.fail(f"expected {ch!r}")
        self.take()

    def fail(self, what: str) -> QuerySyntaxError:
        tok = self.tok
        found = "the end of the query" if tok.kind == "end" else repr(tok.text)
        return _error(self.text, tok.pos, f"{what}, found {found}")

    def parse(self) -> Condition:
        if self.tok.kind == "end":
            raise QuerySyntaxError("the query is empty; write a condition such as: episode > 5 and label == \"cat\"")
        cond = self.or_()
        if self.tok.kind != "end":
            raise self.fail("expected 'and', 'or' or the end of the query")
        return cond

    def or_(self) -> Condition:
        parts = [self.and_()]
        while self.is_kw("or"):
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Condition:
        parts = [self.not_()]
        while self.is_kw("and"):
            self.take()
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_(self) -> Condition:
        if self.is_kw("not"):
            with self.nested():
                self.take()
                return Not(self.not_())
        if self.tok.kind == "punct" and self.tok.text == "(":
            with self.nested():
                self.take()
                inner = self.or_()
                self.expect_punct(")")
                return inner
        return self.test()

    @contextlib.contextmanager
    def nested(self) -> Iterator[None]:
        """One level deeper into parentheses or ``not``; too deep is a syntax error, not a RecursionError."""
        if self.depth >= MAX_DEPTH:
            raise self.fail(f"parentheses and 'not' nest more than {MAX_DEPTH} deep; simplify the query")
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def test(self) -> Condition:
        if self.tok.kind != "field":
            raise self.fail("expected a field name (quote odd names in backticks: `my field`)")
        name = self.take().value
        tok = self.tok
        if tok.kind == "op":
            self.take()
            return Leaf(name, _OPS[tok.text], self.value())
        if self.is_kw("contains", "startswith", "endswith"):
            op = self.take().text
            if self.tok.kind != "string":
                raise self.fail(f"{op} takes a quoted string")
            return Leaf(name, op, self.take().value)
        if self.is_kw("is"):
            self.take()
            negate = self.is_kw("not")
            if negate:
                self.take()
            if not self.is_kw("null"):
                raise self.fail("expected 'null' after 'is'")
            self.take()
            return Leaf(name, "is_not_null" if negate else "is_null")
        negate = self.is_kw("not")
        if negate:
            self.take()
            if not self.is_kw("in"):
                raise self.fail("expected 'in' after 'not'")
        if self.is_kw("in"):
            self.take()
            leaf = Leaf(name, "isin", self.value_list())
            return Not(leaf) if negate else leaf
        raise self.fail(f"expected a comparison after {name!r} (==, !=, <, <=, >, >=, contains, startswith, "
                        "endswith, in, is null)")

    def value(self) -> Any:
        tok = self.tok
        if tok.kind in ("number", "string"):
            return self.take().value
        if self.is_kw("true", "false"):
            return self.take().text == "true"
        if self.is_kw("null"):
            raise self.fail("compare with null using 'is null' or 'is not null'")
        if tok.kind == "field":
            raise self.fail("expected a value (a number, a quoted string, true or false): comparing two fields "
                            "is not supported, and text needs quotes")
        raise self.fail("expected a value (a number, a quoted string, true or false)")

    def value_list(self) -> tuple[Any, ...]:
        self.expect_punct("[") if self.tok.text == "[" else self.expect_punct("(")
        close = "]" if self.tokens[self.i - 1].text == "[" else ")"
        items: list[Any] = []
        if self.tok.kind == "punct" and self.tok.text == close:
            self.take()
            return ()
        while True:
            items.append(self.value())
            if self.tok.kind == "punct" and self.tok.text == ",":
                self.take()
                continue
            self.expect_punct(close)
            return tuple(items)


def parse(text: str) -> Condition:
    """A textual query as a :class:`Condition`; QuerySyntaxError pointing at the problem otherwise."""
    if not isinstance(text, str):
        raise QuerySyntaxError(f"a query is text, not {type(text).__name__}")
    return _Parser(text).parse()


__all__ = ["KEYWORDS", "Token", "parse", "tokenize"]
