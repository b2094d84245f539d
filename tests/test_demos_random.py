"""Random demonstrations: a per-seed query set, per-item draws that ignore batching, never the item itself."""

from pathlib import Path

import pytest

from flamingo_eval.data import load_split
from flamingo_eval.data.sample import Sample
from flamingo_eval.demos import Demo, Selector
from flamingo_eval.demos.random import RandomSelector
from flamingo_eval.errors import DataError
from flamingo_eval.prompt import Image
from flamingo_eval.task import load_task

DATA = Path(__file__).parent / "fixtures" / "data"


def pool_of(n: int) -> list[Sample]:
    return [Sample(str(i), Image(key=f"p/{i}.jpg")) for i in range(n)]


def ids(demos) -> list[str]:
    return [d.sample.id for d in demos]


def test_it_implements_the_selector_protocol_and_describes_itself():
    sel = RandomSelector(pool_of(50), seed=3, query_set_size=20)
    selector: Selector = sel
    demos = selector.select(Sample("q", Image(key="e/q.jpg")), 2)
    assert selector.name == "random" and all(isinstance(d, Demo) and d.similarity is None for d in demos)
    assert sel.describe() == {"selection": "random", "seed": 3, "query_set_size": 20}


def test_the_query_set_is_fixed_per_seed_and_capped_by_the_pool():
    pool = pool_of(5000)
    a, b, c = RandomSelector(pool, 1), RandomSelector(pool, 1), RandomSelector(pool, 2)
    assert a.query_set == b.query_set and len(a.query_set) == 2048 == len(set(a.query_set))
    assert a.query_set != c.query_set
    assert len(RandomSelector(pool_of(30), 1).query_set) == 30


def test_demos_come_from_the_query_set_distinct_and_k_of_them():
    sel = RandomSelector(pool_of(400), seed=0, query_set_size=64)
    allowed = {str(i) for i in sel.query_set}
    for q in range(20):
        got = ids(sel.select(Sample(f"q{q}", Image(key=f"e/{q}.jpg")), 16))
        assert len(got) == 16 == len(set(got)) and set(got) <= allowed


def test_selection_is_a_pure_function_of_seed_and_query_id_whatever_the_order():
    pool = pool_of(300)
    queries = [Sample(f"q{i}", Image(key=f"e/{i}.jpg")) for i in range(30)]
    forward = RandomSelector(pool, seed=7)
    first = {q.id: ids(forward.select(q, 4)) for q in queries}
    backward = RandomSelector(pool, seed=7)  # a fresh process, other order, other batch split
    second = {q.id: ids(backward.select(q, 4)) for q in reversed(queries)}
    again = {q.id: ids(forward.select(q, 4)) for q in queries[::3]}
    assert first == second and all(first[k] == v for k, v in again.items())
    # and different items or seeds get different demonstrations
    assert len({tuple(v) for v in first.values()}) > 25
    other_seed = RandomSelector(pool, seed=8)
    assert sum(ids(other_seed.select(q, 4)) != first[q.id] for q in queries) > 25


def test_the_item_itself_never_demonstrates():
    pool = pool_of(10)
    sel = RandomSelector(pool, seed=0)
    for item in pool:
        assert item.id not in ids(sel.select(item, 9))


def test_same_id_from_another_split_is_not_the_item_itself():
    # VizWiz question ids restart at 0 in each split: val "3" is not train "3"
    task = load_task("vizwiz")
    pool, ev = load_split(task, "demo", DATA), load_split(task, "eval", DATA)
    sel = RandomSelector(pool, seed=0)
    assert len(sel.select(ev[3], len(pool))) == len(pool)
    with pytest.raises(DataError, match="the query itself excluded"):
        sel.select(pool[3], len(pool))


def test_more_shots_than_the_query_set_holds_is_a_data_error():
    sel = RandomSelector(load_split(load_task("coco"), "demo", DATA), seed=0)
    query = load_split(load_task("coco"), "eval", DATA)[0]
    assert len(sel.select(query, 12)) == 12
    with pytest.raises(DataError, match=r"coco/demo: 16 random demonstrations requested but the query set holds only 12"):
        sel.select(query, 16)
