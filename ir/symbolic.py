"""A symbolic size for graphs that serve every batch size: `Sym` and the guards on decisions about it.

A dynamic graph's shapes and integer attributes may hold `Sym` values: floor(p(N) / den) for a polynomial p with
integer coefficients in one size variable N (the batch dimension) and a positive integer den (1 for sizes; more
for loop counts such as ceil(rows / tile)), each carrying its value at the representative N the code is generated
for. Arithmetic stays symbolic where the result is of that form. A decision that depends on N's value (a
comparison, a remainder, an int() for a Python range) takes the representative's answer and records it as a guard
while a `guarded()` block collects them: compiled code is valid for exactly the N whose guards hold
(`Guards.hold`). Outside a guarded block such a decision is an error, so no pass silently specializes on the
representative value.

N is at least MIN_N = 2: a batch of one broadcasts differently and gets its own specialized graph.
"""

from __future__ import annotations

import numbers
import threading

import numpy as np

MIN_N = 2


class SymbolicDecision(RuntimeError):
    """A decision on the symbolic size outside a guarded compile."""


def _eval(coefs: tuple, n: int, den: int = 1) -> int:
    acc = 0
    for c in reversed(coefs):
        acc = acc * n + c
    return acc // den


def _text(coefs: tuple, den: int = 1) -> str:
    terms = []
    for i in range(len(coefs) - 1, -1, -1):
        c = coefs[i]
        if c == 0:
            continue
        var = "" if i == 0 else ("N" if i == 1 else f"N^{i}")
        if not var:
            terms.append(str(c))
        else:
            terms.append(var if c == 1 else f"-{var}" if c == -1 else f"{c}*{var}")
    text = "+".join(terms).replace("+-", "-") or "0"
    return text if den == 1 else f"({text})//{den}"


_TEST = {
    "==": lambda x: x == 0,
    "!=": lambda x: x != 0,
    "<": lambda x: x < 0,
    "<=": lambda x: x <= 0,
    ">": lambda x: x > 0,
    ">=": lambda x: x >= 0,
}
_NEGATE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


class Guards:
    """Predicates on N that held at the representative N when decisions were taken: (coefs, den, op) for
    `floor(p(N) / den) op 0`, or op = ("%", d, r) for `floor(p(N) / den) % d == r`."""

    def __init__(self, rep: int):
        self.rep = rep
        self.items: list = []
        self._seen: set = set()

    def add(self, coefs: tuple, den: int, op) -> None:
        item = (tuple(coefs), den, op)
        if item not in self._seen:
            self._seen.add(item)
            self.items.append(item)

    def hold(self, n: int) -> bool:
        """Do all guards hold at N = n (and is n a size dynamic code serves)?"""
        return n >= MIN_N and all(_holds(c, den, op, n) for c, den, op in self.items)

    def excluded(self, n: int) -> bool:
        """Is n one of the points a decision taken as at a generic N leaves out (an `!=` guard fails there)? Code
        generated for another representative would leave it out too."""
        return any(op == "!=" and not _holds(c, den, op, n) for c, den, op in self.items)

    def pinned(self) -> bool:
        """Does a guard hold at a few N only (an equality on N): code that serves no other size?"""
        return any(op == "==" and len(c) > 1 for c, den, op in self.items)

    def to_json(self) -> list:
        return [[list(c), den, op if isinstance(op, str) else list(op)] for c, den, op in self.items]

    @classmethod
    def from_json(cls, rep: int, items: list) -> "Guards":
        """Guards from to_json(); ValueError when the record is not one."""
        g = cls(rep)
        for c, den, op in items:
            op = op if isinstance(op, str) else tuple(op)
            ok_op = op in _TEST or (
                isinstance(op, tuple) and len(op) == 3 and op[0] == "%" and all(type(x) is int for x in op[1:])
            )
            if not (ok_op and type(den) is int and den > 0 and all(type(x) is int for x in c)):
                raise ValueError("bad guard record")
            g.add(tuple(c), den, op)
        return g

    def __repr__(self) -> str:
        def text(c, den, op):
            return f"{_text(c, den)} {op} 0" if isinstance(op, str) else f"{_text(c, den)} % {op[1]} == {op[2]}"

        return " and ".join(text(*item) for item in self.items) or "true"


def _holds(coefs: tuple, den: int, op, n: int) -> bool:
    x = _eval(coefs, n, den)
    return _TEST[op](x) if isinstance(op, str) else x % op[1] == op[2]


_state = threading.local()


def _stack() -> list:
    """This thread's recorders, innermost last: Guards, or None inside heuristic()."""
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    return stack


class guarded:
    """`with guarded(rep) as guards:` decisions on N inside take rep's answer and are recorded in guards."""

    def __init__(self, rep: int):
        self.guards = Guards(rep)

    def __enter__(self) -> Guards:
        _stack().append(self.guards)
        return self.guards

    def __exit__(self, *exc) -> None:
        _stack().pop()


class heuristic:
    """`with heuristic():` decisions inside only choose between alternatives that are all correct at every N (how
    many threads, which tile shape): they take the representative's answer and record no guard."""

    def __enter__(self) -> None:
        _stack().append(None)

    def __exit__(self, *exc) -> None:
        _stack().pop()


def _record(coefs: tuple, den: int, op) -> None:
    stack = _stack()
    if not stack:
        raise SymbolicDecision(
            f"internal: a decision on the dynamic size ({_text(coefs, den)} {op}) outside a guarded compile"
        )
    if stack[-1] is not None:
        stack[-1].add(coefs, den, op)


def _trim(coefs) -> tuple:
    coefs = list(coefs)
    while len(coefs) > 1 and coefs[-1] == 0:
        coefs.pop()
    return tuple(coefs)


def _make(coefs, rep: int, den: int = 1):
    """floor(p(N) / den) as an int when it does not depend on N, else a Sym."""
    t = _trim(coefs)
    if len(t) == 1:
        return t[0] // den
    if den > 1 and all(c % den == 0 for c in t[1:]):  # (c0 + den*k(N)) // den = c0 // den + k(N)
        return _make([t[0] // den] + [c // den for c in t[1:]], rep)
    return Sym(t, rep, den)


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


class Sym:
    """floor(p(N) / den) for a polynomial p with integer coefficients (coefs[i] * N**i), with its value at the
    representative N."""

    __slots__ = ("coefs", "den", "rep", "value")

    def __init__(self, coefs: tuple, rep: int, den: int = 1):
        self.coefs, self.rep, self.den = tuple(coefs), rep, den
        self.value = _eval(self.coefs, rep, den)

    @staticmethod
    def var(rep: int) -> "Sym":
        """N itself, generated for N = rep."""
        return Sym((0, 1), rep)

    def at(self, n: int) -> int:
        return _eval(self.coefs, n, self.den)

    # -- arithmetic (symbolic where the result has the form) --
    def _poly(self, other) -> tuple | None:
        """other's coefficients over this Sym's denominator, when other is an int or a polynomial Sym."""
        if _is_int(other):
            return (int(other) * self.den,)
        if isinstance(other, Sym) and other.den == 1:  # floor(p / d) + q = floor((p + d*q) / d)
            return tuple(c * self.den for c in other.coefs)
        return None

    def __add__(self, other):
        c = self._poly(other)
        if c is None:
            if isinstance(other, Sym):
                return other + self if self.den == 1 else self._decided() + other
            return NotImplemented
        out = [0] * max(len(c), len(self.coefs))
        for i, x in enumerate(self.coefs):
            out[i] += x
        for i, x in enumerate(c):
            out[i] += x
        return _make(out, self.rep, self.den)

    __radd__ = __add__

    def __neg__(self):
        if self.den != 1:  # -floor(p / d) = ceil(-p / d) = floor((d - 1 - p) / d)
            out = [-x for x in self.coefs]
            out[0] += self.den - 1
            return _make(out, self.rep, self.den)
        return _make([-x for x in self.coefs], self.rep)

    def __sub__(self, other):
        if _is_int(other):
            return self + (-int(other))
        if not isinstance(other, Sym):
            return NotImplemented
        if other.den == 1:
            return self + (-other)
        if self.den == 1:  # p - floor(q / d) = ceil((d*p - q) / d) = floor((d*p - q + d - 1) / d)
            d = other.den
            out = [0] * max(len(self.coefs), len(other.coefs))
            for i, x in enumerate(self.coefs):
                out[i] += d * x
            for i, x in enumerate(other.coefs):
                out[i] -= x
            out[0] += d - 1
            return _make(out, self.rep, d)
        return self - other._decided()

    def __rsub__(self, other):
        return (-self) + other if _is_int(other) else NotImplemented

    def __mul__(self, other):
        if self.den != 1:
            return self._decided() * other if (_is_int(other) or isinstance(other, Sym)) else NotImplemented
        c = other.coefs if isinstance(other, Sym) and other.den == 1 else (int(other),) if _is_int(other) else None
        if c is None:
            return self._decided() * other if isinstance(other, Sym) else NotImplemented
        out = [0] * (len(c) + len(self.coefs) - 1)
        for i, x in enumerate(self.coefs):
            for j, y in enumerate(c):
                out[i + j] += x * y
        return _make(out, self.rep)

    __rmul__ = __mul__

    def _exact_quotient(self, other: "Sym"):
        """self / other as an int or polynomial Sym when other, positive for every N, divides self exactly as
        polynomials with integer coefficients (16*N+16 by 2*N+2: 8), else None."""
        if self.den != 1 or other.den != 1:
            return None
        rest, div = list(self.coefs), list(_trim(other.coefs))
        if len(div) > len(rest) or _sign_known(tuple(div)) != 1:  # (a divisor positive at every N, as sizes are)
            return None
        q = [0] * (len(rest) - len(div) + 1)
        for i in reversed(range(len(q))):  # long division, leading terms first
            lead = rest[i + len(div) - 1]
            if lead % div[-1]:
                return None
            q[i] = lead // div[-1]
            for j, d in enumerate(div):
                rest[i + j] -= q[i] * d
        return None if any(rest) else _make(q, self.rep)

    def __floordiv__(self, other):
        if isinstance(other, Sym):
            q = self._exact_quotient(other)
            if q is None and 0 <= self < other:
                q = 0
            return q if q is not None else self // other._decided()
        if not _is_int(other):
            return NotImplemented
        d = int(other)
        if d <= 0:
            return self._decided() // d
        return _make(self.coefs, self.rep, self.den * d)  # floor(floor(p / a) / b) = floor(p / (a*b))

    def __rfloordiv__(self, other):
        if not _is_int(other):
            return NotImplemented
        if 0 <= other < self:  # (a guard on N's range, not on its value)
            return 0
        return other // self._decided()

    def __mod__(self, other):
        if isinstance(other, Sym):
            if self._exact_quotient(other) is not None:
                return 0
            return self if 0 <= self < other else self._decided() % other
        if not _is_int(other):
            return NotImplemented
        d = int(other)
        if d <= 0:
            return self._decided() % d
        if self.den == 1 and all(x % d == 0 for x in self.coefs[1:]):
            return self.coefs[0] % d
        r = self.value % d  # the remainder, guarded by itself
        _record(self.coefs, self.den, ("%", d, r))
        return r

    def __rmod__(self, other):
        if not _is_int(other):
            return NotImplemented
        if 0 <= other < self:
            return int(other)
        return other % self._decided()

    def __truediv__(self, other):
        return self._decided() / other

    def __rtruediv__(self, other):
        return other / self._decided()

    # -- decisions (recorded as guards) --
    def _compare(self, other, op: str):
        if not (_is_int(other) or isinstance(other, Sym)):
            return NotImplemented
        diff = self - other
        if _is_int(diff):
            return _TEST[op](diff)
        if diff.den == 1:
            sign = _sign_known(diff.coefs)
            if sign is not None:
                return _TEST[op](sign)
        if op in ("==", "!="):
            # Two different polynomials are equal at a few N only (or, floored, over a bounded range of N): decide
            # "different", as at a generic N, even where the representative happens to be one of them (8*N == 64
            # at N = 8, (N+3)//4 == 1 at N = 3); the guard excludes those N.
            _record(diff.coefs, diff.den, "!=")
            return op == "!="
        result = _TEST[op](diff.value)
        _record(diff.coefs, diff.den, op if result else _NEGATE[op])
        return result

    def __eq__(self, other):
        r = self._compare(other, "==")
        return False if r is NotImplemented else r

    def __ne__(self, other):
        r = self._compare(other, "!=")
        return True if r is NotImplemented else r

    def __lt__(self, other):
        return self._compare(other, "<")

    def __le__(self, other):
        return self._compare(other, "<=")

    def __gt__(self, other):
        return self._compare(other, ">")

    def __ge__(self, other):
        return self._compare(other, ">=")

    def __bool__(self) -> bool:
        return self != 0

    def _decided(self) -> int:
        """The representative value, with the guard that this expression has it."""
        _record((self.coefs[0] - self.value * self.den,) + self.coefs[1:], self.den, "==")
        return self.value

    def __index__(self) -> int:
        return self._decided()

    __int__ = __index__

    def __float__(self) -> float:
        return float(self._decided())

    def __hash__(self) -> int:
        return hash(("Sym", self.coefs, self.den))

    def __repr__(self) -> str:
        return _text(self.coefs, self.den)


def _sign_known(coefs: tuple) -> int | None:
    """1 / -1 / 0 when p(N) is positive / negative / zero for every N >= MIN_N, else None."""
    if len(coefs) == 1:
        return (coefs[0] > 0) - (coefs[0] < 0)
    q = _shifted(coefs)  # p(N) = q(N - MIN_N): coefficients of q all of one sign (q not 0) give p's sign
    for s in (1, -1):
        if all(s * c >= 0 for c in q) and any(c != 0 for c in q):
            return s
    return None


def _shifted(coefs: tuple) -> tuple:
    """Coefficients of q(M) = p(M + MIN_N)."""
    out = [0] * len(coefs)
    for c in reversed(coefs):  # Horner: q = q * (M + MIN_N) + c
        nxt = [0] * len(coefs)
        for j, x in enumerate(out):
            if x:
                nxt[j] += x * MIN_N
                if j + 1 < len(nxt):
                    nxt[j + 1] += x
        nxt[0] += c
        out = nxt
    return tuple(out)


class Quot:
    """num / den for sizes num, den (ints or Syms) rounded to float32 or float64: a constant folded from counts
    (a mean's gradient 1/N, the unbiased variance's N/(N-1))."""

    __slots__ = ("num", "den", "dtype")

    def __init__(self, num, den, dtype: str):
        self.num, self.den, self.dtype = num, den, dtype

    @staticmethod
    def of(p: int, q: int, dtype: str) -> float:
        """p / q rounded as dtype (exact division, as the compiled code computes it)."""
        return float(np.float32(p) / np.float32(q)) if dtype == "float32" else p / q

    def at(self, n: int) -> float:
        at = lambda x: x.at(n) if isinstance(x, Sym) else x  # noqa: E731
        return Quot.of(at(self.num), at(self.den), self.dtype)

    def __eq__(self, other) -> bool:
        return isinstance(other, Quot) and (self.num, self.den, self.dtype) == (other.num, other.den, other.dtype)

    def __hash__(self) -> int:
        return hash(("Quot", self.num, self.den, self.dtype))

    def __repr__(self) -> str:
        return f"({self.num})/({self.den}):{self.dtype}"


def evaluate(x, n: int):
    """x with every Sym replaced by its value at N = n (tuples and lists element by element)."""
    if isinstance(x, Sym):
        return x.at(n)
    if isinstance(x, tuple):
        return tuple(evaluate(e, n) for e in x)
    if isinstance(x, list):
        return [evaluate(e, n) for e in x]
    return x
