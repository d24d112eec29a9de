"""Selectors: the parser (pure) and the SQL they compile to (on SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from fleetops.inventory.selectors import (
    KEYS,
    All,
    And,
    Except,
    HostPattern,
    Node,
    Not,
    Or,
    SelectorError,
    Term,
    describe,
    expand_ranges,
    parse,
    select_hosts,
)
from fleetops.models.inventory import (
    Cluster,
    Datacenter,
    HardwareModel,
    Host,
    HostGroup,
    HostLabel,
    Rack,
    Region,
)


def t(key: str, *values: str, op: str = "=") -> Term:
    return Term(key, "=" if op == "=" else "!=", values)


# --- parser ----------------------------------------------------------------------------------

VALID = [
    ("rack=r07", t("rack", "r07")),
    (
        "cluster=c1,rack=r07,label:role=datanode,state=in_service",
        And(
            And(And(t("cluster", "c1"), t("rack", "r07")), t("label:role", "datanode")),
            t("state", "in_service"),
        ),
    ),
    ("rack=r07|r08", t("rack", "r07", "r08")),
    ("rack != r07 | r08", t("rack", "r07", "r08", op="!=")),
    ("hostname=a,dc=d1,sku=m1", And(And(t("host", "a"), t("datacenter", "d1")), t("model", "m1"))),
    ("RACK=r1 AND Label:role=x", And(t("rack", "r1"), t("label:role", "x"))),
    ("label:fleet.io/tier-2=gold", t("label:fleet.io/tier-2", "gold")),
    ("label:role=and|or", t("label:role", "and", "or")),
    ("dn-0[01-40]", HostPattern("dn-0[01-40]")),
    ("dn-[1,3,5]", HostPattern("dn-[1,3,5]")),
    ("dn-*", HostPattern("dn-*")),
    ("10.0.0.5", HostPattern("10.0.0.5")),
    ("*", All()),
    ("all", All()),
    ("not all", Not(All())),
    ("not not a", Not(Not(HostPattern("a")))),
    ("a or b or c", Or(Or(HostPattern("a"), HostPattern("b")), HostPattern("c"))),
    ("a and b except c", Except(And(HostPattern("a"), HostPattern("b")), HostPattern("c"))),
    ("a except b and c", And(Except(HostPattern("a"), HostPattern("b")), HostPattern("c"))),
    ("a or b and c", Or(HostPattern("a"), And(HostPattern("b"), HostPattern("c")))),
    ("not a and b", And(Not(HostPattern("a")), HostPattern("b"))),
    ("not a,b", And(Not(HostPattern("a")), HostPattern("b"))),
    ("a except b,c", Except(HostPattern("a"), And(HostPattern("b"), HostPattern("c")))),
    ("not (a or b)", Not(Or(HostPattern("a"), HostPattern("b")))),
    (
        "(rack=r01 or rack=r02) and label:role=datanode except dn-00[1-3]",
        Except(
            And(Or(t("rack", "r01"), t("rack", "r02")), t("label:role", "datanode")),
            HostPattern("dn-00[1-3]"),
        ),
    ),
    ("  ((a))  ", HostPattern("a")),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parse_builds_the_ast(text: str, expected: Node) -> None:
    assert parse(text) == expected
    assert parse(describe(expected)) == expected


INVALID = [
    ("", 1, "empty selector"),
    ("   ", 1, "empty selector"),
    ("rak=r07", 1, "unknown key 'rak' (known: host, address, cluster"),
    ("cluster=c1,rak=r07", 12, "unknown key 'rak'"),
    ("all=x", 1, "unknown key 'all'"),
    ("label:=x", 7, "bad label key ''"),
    ("label:a+b=x", 7, "bad label key 'a+b'"),
    ("label:role or a", 12, "expected '=' or '!=' after 'label:role', found 'or'"),
    ("(rack=r01", 10, "expected ')' to close '(' at column 1"),
    ("(a or (b)", 10, "expected ')' to close '(' at column 1"),
    ("rack=r01)", 9, "unbalanced ')'"),
    ("()", 2, "expected a term, a host pattern, 'not' or '(' after '(', found ')'"),
    ("rack=r01 and", 13, "after 'and', found end of selector"),
    ("rack=r01 or", 12, "after 'or', found end of selector"),
    ("rack=r01,", 10, "after ',', found end of selector"),
    ("not", 4, "after 'not', found end of selector"),
    ("and rack=r01", 1, "expected a term, a host pattern, 'not' or '(', found 'and'"),
    ("a or except b", 6, "found 'except'"),
    ("rack=", 6, "expected a value after '='"),
    ("rack=r01|", 10, "expected a value after '|'"),
    ("rack==r01", 6, "expected a value after '=', found '='"),
    ("rack!r01", 5, "expected '!='"),
    ("rack=r01 rack=r02", 10, "expected ',', 'and', 'or', 'except' or the end after 'r01'"),
    ("dn-0[40-01]", 5, "bad range [40-01]: start 40 is greater than end 01"),
    ("rack=r[2-1]", 7, "bad range [2-1]"),
    ("dn-[a-c]", 4, "bad item 'a-c'"),
    ("dn-[]", 4, "bad item ''"),
    ("dn-[1-3", 4, "'[' is never closed"),
    ("dn-1]", 5, "unbalanced ']'"),
    ("dn-[0-999999]", 1, "expands to more than 100,000 names"),
    ("dn-[1-500]x[1-500]", 1, "expands to more than 100,000 names"),
    ("a or dn-[1-60000] or dn-[1-60000]", 22, "expands to more than 100,000 names"),
    ("x" * 4097, 4097, "the limit is 4096"),
]


@pytest.mark.parametrize(("text", "column", "problem"), INVALID)
def test_parse_rejects_with_column_and_problem(text: str, column: int, problem: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse(text)
    assert caught.value.column == column
    assert problem in caught.value.detail
    assert caught.value.detail.startswith(f"selector error at column {column}: ")
    assert caught.value.status_code == 400
    assert caught.value.to_json()["column"] == column


def test_length_and_expansion_limits_are_inclusive() -> None:
    assert parse("a" * 4096) == HostPattern("a" * 4096)
    assert parse("dn-[000000-099999]") == HostPattern("dn-[000000-099999]")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("plain", ["plain"]),
        ("dn-0[01-03]", ["dn-001", "dn-002", "dn-003"]),
        ("[8-11]", ["8", "9", "10", "11"]),
        ("[08-11]", ["08", "09", "10", "11"]),
        ("[0-2]", ["0", "1", "2"]),
        ("n[1-2]-[a,b]", ["n1-a", "n1-b", "n2-a", "n2-b"]),
        ("[1-3,7]", ["1", "2", "3", "7"]),
        ("x[007]", ["x007"]),
        ("dn-*", ["dn-*"]),
        ("r[01-02]?", ["r01?", "r02?"]),
        ("", [""]),
    ],
)
def test_expand_ranges(pattern: str, expected: list[str]) -> None:
    assert expand_ranges(pattern) == expected


def test_expand_ranges_reports_columns_within_the_pattern() -> None:
    with pytest.raises(SelectorError, match="at column 3: bad range"):
        expand_ranges("dn[9-1]")


@given(st.lists(st.tuples(st.integers(0, 120), st.integers(0, 6)), max_size=4))
def test_expansion_count_is_the_product_of_range_sizes(ranges: list[tuple[int, int]]) -> None:
    pattern = "h" + "".join(f"-[{low}-{low + span}]" for low, span in ranges)
    names = expand_ranges(pattern)
    assert len(names) == math.prod(span + 1 for _, span in ranges)
    assert len(set(names)) == len(names)


_VALUES = st.sampled_from(["r01", "dn-0[01-40]", "a*", "x?y", "in_service", "10.0.0.5", "and"])
_PATTERNS = st.sampled_from(["dn-0[01-40]", "dn-*", "10.0.0.5", "web%1", "db_1", "n[1,3]"])
_KEYS = st.sampled_from([*KEYS, "label:role", "label:fleet.io/tier"])


def _terms(values: st.SearchStrategy[str]) -> st.SearchStrategy[Node]:
    some = st.lists(values, min_size=1, max_size=3).map(tuple)
    return st.builds(Term, _KEYS, st.sampled_from(["=", "!="]), some)


_LEAVES: st.SearchStrategy[Node] = st.one_of(
    _terms(_VALUES),
    st.builds(HostPattern, _PATTERNS),
    st.just(All()),
)


def _trees(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(Not, children),
        st.builds(And, children, children),
        st.builds(Or, children, children),
        st.builds(Except, children, children),
    )


NODES = st.recursive(_LEAVES, _trees, max_leaves=8)


@given(NODES)
def test_describe_round_trips(node: Node) -> None:
    assert parse(describe(node)) == node


# --- SQL -------------------------------------------------------------------------------------


@dataclass
class _Fleet:
    """What the factory stored, kept in Python so a reference evaluator can check the SQL."""

    hosts: dict[str, dict[str, str | None]] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)


def _build_fleet(session: Session) -> _Fleet:
    eu, us = Region(name="eu"), Region(name="us")
    ams, iad = Datacenter(name="ams1", region=eu), Datacenter(name="iad1", region=us)
    c1, c2 = Cluster(name="c1"), Cluster(name="c2")
    racks = {
        "r01": Rack(name="r01", datacenter=ams, cluster=c1),
        "r02": Rack(name="r02", datacenter=ams, cluster=c1),
        "r03": Rack(name="r03", datacenter=iad, cluster=c2),
        "r04": Rack(name="r04", datacenter=iad),
    }
    models = {"m-a": HardwareModel(name="m-a"), "m-b": HardwareModel(name="m-b")}
    clusters = {"c1": c1, "c2": c2}
    fleet = _Fleet()

    def host(
        name: str,
        *,
        rack: str | None = None,
        cluster: str | None = None,
        model: str | None = None,
        state: str = "in_service",
        address: str = "",
        labels: dict[str, str] | None = None,
        groups: tuple[str, ...] = (),
    ) -> None:
        session.add(
            Host(
                hostname=name,
                address=address,
                state=state,
                rack=racks[rack] if rack else None,
                cluster=clusters[cluster] if cluster else None,
                model=models[model] if model else None,
                labels=[HostLabel(key=k, value=v) for k, v in (labels or {}).items()],
                groups=[HostGroup(name=g) for g in groups],
            )
        )
        dc = racks[rack].datacenter if rack else None
        fleet.hosts[name] = {
            "host": name, "address": address, "state": state, "rack": rack, "cluster": cluster,
            "model": model, "datacenter": dc.name if dc else None,
            "region": dc.region.name if dc else None,
        }  # fmt: skip
        fleet.labels[name] = labels or {}
        fleet.groups[name] = set(groups)

    for i in range(1, 11):
        rack = "r01" if i <= 5 else "r02"
        host(
            f"dn-{i:03}", rack=rack, cluster="c1", model="m-a", address=f"10.0.{rack[-1]}.{i}",
            state="draining" if i == 10 else "in_service", labels={"role": "datanode"},
            groups=("hadoop",),
        )  # fmt: skip
    for i, rack in ((1, "r01"), (2, "r02")):
        host(
            f"nn-0{i}", rack=rack, cluster="c1", model="m-b", address=f"10.0.{rack[-1]}.100",
            labels={"role": "namenode"}, groups=("hadoop", "masters"),
        )  # fmt: skip
    for i in range(1, 5):
        labels = {"role": "gpu"} | ({"fleet.io/tier": "gold"} if i <= 2 else {})
        host(
            f"gpu-0{i}", rack="r03", cluster="c2", model="m-b", labels=labels, groups=("slurm",),
            state="in_repair" if i == 4 else "in_service",
        )  # fmt: skip
    host("DN-099", rack="r03", cluster="c2", labels={"role": "datanode"})
    host("db_1", rack="r04", cluster="c2", address="10.0.4.1", labels={"role": "db"})
    host("dbx1", rack="r04", cluster="c2", labels={"role": "db"})
    host("web%1", rack="r04")
    host("web-11", rack="r04")
    host("spare-01", state="provisioning")  # no rack, cluster, model, labels or groups
    session.commit()
    return fleet


@pytest.fixture
def fleet(session: Session) -> _Fleet:
    return _build_fleet(session)


def _names(session: Session, selector: Node | str) -> list[str]:
    return [h.hostname for h in session.scalars(select_hosts(selector))]


DN = [f"dn-{i:03}" for i in range(1, 11)]
NN = ["nn-01", "nn-02"]
GPU = ["gpu-01", "gpu-02", "gpu-03", "gpu-04"]
R04 = ["db_1", "dbx1", "web%1", "web-11"]
ALL = [*DN, *NN, *GPU, *R04, "DN-099", "spare-01"]


def _but(*excluded: list[str] | str) -> list[str]:
    drop = {name for group in excluded for name in ([group] if isinstance(group, str) else group)}
    return [name for name in ALL if name not in drop]


CASES = [
    ("all", ALL),
    ("*", ALL),
    ("not all", []),
    ("no-such-host", []),
    ("cluster=c1", [*DN, *NN]),
    ("cluster!=c1", _but(DN, NN)),
    ("cluster=c*", _but("web%1", "web-11", "spare-01")),
    ("rack=r01", [*DN[:5], "nn-01"]),
    ("rack=r0[1-2],label:role=namenode", NN),
    ("rack!=r01|r02|r03|r04", ["spare-01"]),
    ("not rack=r0?", ["spare-01"]),
    ("dc=iad1", [*GPU, *R04, "DN-099"]),
    ("datacenter=ams*", [*DN, *NN]),
    ("region=eu", [*DN, *NN]),
    ("region!=eu", [*GPU, *R04, "DN-099", "spare-01"]),
    ("model=m-b", [*NN, *GPU]),
    ("sku=m-a|m-b except model=m-b", DN),
    ("state=in_repair|draining", ["dn-010", "gpu-04"]),
    ("state!=in_service", ["dn-010", "gpu-04", "spare-01"]),
    ("label:role=datanode", [*DN, "DN-099"]),
    ("label:role!=datanode", _but(DN, "DN-099")),
    ("label:role=*node", [*DN, *NN, "DN-099"]),
    ("label:fleet.io/tier=gold", GPU[:2]),
    ("label:fleet.io/tier!=gold", _but(GPU[:2])),
    ("group=masters", NN),
    ("group=hadoop except group=masters", DN),
    ("group!=hadoop|slurm", [*R04, "DN-099", "spare-01"]),
    ("dn-0[01-40]", DN),
    ("dn-00[1,3,5]", ["dn-001", "dn-003", "dn-005"]),
    ("host=dn-[001-003,009]", ["dn-001", "dn-002", "dn-003", "dn-009"]),
    ("dn-*", DN),  # case-sensitive on both backends: not DN-099
    ("DN-*", ["DN-099"]),
    ("dn-00?", DN[:9]),
    ("host!=dn-*", _but(DN)),
    ("hostname=nn-01|nn-02", NN),
    ("10.0.4.1", ["db_1"]),
    ("address=10.0.1.*", [*DN[:5], "nn-01"]),
    ("address=10.0.1.1?", []),
    ("db_1", ["db_1"]),  # `_` is literal, not LIKE's any-character
    ("db_?", ["db_1"]),
    ("db?1", ["db_1", "dbx1"]),
    ("web%1", ["web%1"]),  # `%` is literal, not LIKE's any-string
    ("web%*", ["web%1"]),
    ("web*1", ["web%1", "web-11"]),
    ("(rack=r01 or rack=r02) and label:role=datanode except dn-00[1-3]", DN[3:]),
    ("not cluster=c1,not cluster=c2", ["web%1", "web-11", "spare-01"]),
    (
        "cluster=c2 or rack=r01 except gpu-0[1-3]",
        [*DN[:5], "nn-01", *GPU, "DN-099", "db_1", "dbx1"],
    ),
    (
        "(cluster=c2 or rack=r01) except gpu-0[1-3]",
        [*DN[:5], "nn-01", "gpu-04", "DN-099", "db_1", "dbx1"],
    ),
    ("not (cluster=c2 or rack=r01) except spare-*", [*DN[5:], "nn-02", "web%1", "web-11"]),
    ("host=dn-[0000-1999]|dn-0[01-03]", DN[:3]),  # over the bound-parameter cap: inlined
    ("host=it's-[0001-1500]|nn-01", ["nn-01"]),  # inlined names are quoted safely
]


@pytest.mark.parametrize(("selector", "expected"), CASES)
def test_select_hosts(session: Session, fleet: _Fleet, selector: str, expected: list[str]) -> None:
    assert _names(session, selector) == sorted(expected)


def _matches(values: tuple[str, ...], actual: str | None) -> bool:
    names = [name for value in values for name in expand_ranges(value)]
    return actual is not None and any(fnmatchcase(actual, name) for name in names)


def _evaluate(node: Node, fleet: _Fleet, name: str) -> bool:
    """Reference semantics in plain Python, independent of the SQL."""
    match node:
        case All():
            return True
        case HostPattern(pattern):
            return _matches((pattern,), name) or _matches((pattern,), fleet.hosts[name]["address"])
        case Term(key, op, values):
            if key.startswith("label:"):
                found = _matches(values, fleet.labels[name].get(key.removeprefix("label:")))
            elif key == "group":
                found = any(_matches(values, group) for group in fleet.groups[name])
            else:
                found = _matches(values, fleet.hosts[name][key])
            return found == (op == "=")
        case Not(inner):
            return not _evaluate(inner, fleet, name)
        case And(left, right):
            return _evaluate(left, fleet, name) and _evaluate(right, fleet, name)
        case Or(left, right):
            return _evaluate(left, fleet, name) or _evaluate(right, fleet, name)
        case Except(left, right):
            return _evaluate(left, fleet, name) and not _evaluate(right, fleet, name)
    raise AssertionError(node)


_FLEET_VALUES = st.sampled_from(
    ["c1", "c2", "r0[1-3]", "r04", "ams1", "us", "m-?", "draining", "datanode", "*node", "gold",
     "hadoop", "masters", "dn-00[1-5]", "10.0.1.*", "db_1", "nn-0[1,2]"]
)  # fmt: skip
_FLEET_LEAVES: st.SearchStrategy[Node] = st.one_of(
    _terms(_FLEET_VALUES),
    st.builds(HostPattern, st.sampled_from(["dn-*", "gpu-0[2-3]", "db?1", "web%1", "10.0.4.1"])),
)


# The fleet is read-only, so sharing the function-scoped fixture across examples is safe.
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(node=st.recursive(_FLEET_LEAVES, _trees, max_leaves=5))
def test_sql_agrees_with_reference_semantics(session: Session, fleet: _Fleet, node: Node) -> None:
    expected = sorted(name for name in fleet.hosts if _evaluate(node, fleet, name))
    assert _names(session, node) == expected
