"""What the answer-shuffle control is for, shown on of-toy: it names a COCO colour by finding a demonstration
image of the query's colour and taking that demonstration's word, so with the answers shuffled among the same
random demonstrations it loses what four shots add and falls to its 0-shot level, while the model-free
``majority`` baseline (the demonstrations' own answers) stays where it is."""

import pytest

from flamingo_eval.controls import Control
from flamingo_eval.runner import RunConfig, Runner
from flamingo_eval.toy import Sizes, generate

N = 48  # 48 items: 0-shot 301.8, 4-shot 337.0, answers shuffled 303.1 CIDEr (data seed 11)


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy100")
    generate(root, seed=11, sizes=Sizes())  # the demo's sizes (400 pool, 100 evaluated)
    return root


def _result(model, root, out, shots, control=None):
    config = RunConfig(model="of-toy", tasks=["coco"], shots=[shots], seeds=[42], num_samples=N, batch_size=16,
                       data_root=str(root), output_dir=str(out), progress=False, control=control or Control())
    (result,) = Runner(config, model=model).run()
    return result


def test_shuffled_answers_take_of_toy_back_to_its_zero_shot_level_and_leave_majority_alone(toy_root, tmp_path):
    from flamingo_eval.models import load_model

    model = load_model("of-toy")
    zero = _result(model, toy_root, tmp_path, 0)
    plain = _result(model, toy_root, tmp_path, 4)
    shuffled = _result(model, toy_root, tmp_path, 4, Control(demo_answers="shuffle"))
    assert shuffled["selection"]["selection"] == "random+demo-answers-shuffle"
    assert plain["mean"] > shuffled["mean"] + 20, (zero["mean"], plain["mean"], shuffled["mean"])
    assert abs(shuffled["mean"] - zero["mean"]) < 10, (zero["mean"], plain["mean"], shuffled["mean"])
    assert shuffled["baselines"]["majority"] == plain["baselines"]["majority"]
    assert shuffled["baselines"]["last"] == plain["baselines"]["last"]
