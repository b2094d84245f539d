import random

from flamingo_eval.toy import language as lang
from flamingo_eval.toy.scenes import BACKGROUNDS, COLOURS, SHAPES, sample_scene


def _scenes():
    rng = random.Random(0)
    return [sample_scene(rng, s, c, n, b) for s in SHAPES for c in COLOURS for n in range(1, 5) for b in BACKGROUNDS]


def test_five_captions_each_naming_count_colour_and_shape():
    rng = random.Random(0)
    scene = sample_scene(rng, "triangle", "purple", 3, "black")
    caps = lang.captions(scene, rng)
    assert len(caps) == 5 and len(set(caps)) == 5
    assert all("purple" in c and "triangles" in c and "three" in c for c in caps)
    assert "an image of three purple triangles" in caps
    single = lang.captions(sample_scene(rng, "circle", "red", 1, "white"), rng)
    assert "a red circle on a white background" in single


def test_the_question_family_follows_the_background_so_look_alike_images_share_questions():
    rng = random.Random(1)
    for scene in _scenes():
        for _ in range(4):
            qa = lang.vqav2_question(scene, rng)
            if qa.answer_type == "yes/no":
                assert qa.answer == ("yes" if f"a {scene.shape} " in qa.question else "no")
            elif scene.background == "white":
                assert qa.answer == scene.colour and qa.question.startswith("what color")
            elif scene.background == "gray":
                assert qa.answer == scene.shape and qa.question.startswith("what shape")
            else:
                assert qa.answer == str(scene.count) and qa.question.startswith("how many")
            assert qa.answer not in qa.distractors


def test_okvqa_answers_need_knowledge_beyond_the_visible_attribute():
    rng = random.Random(2)
    for scene in _scenes():
        qa = lang.okvqa_question(scene, rng)
        expected = {"white": lang.FRUIT[scene.colour], "gray": lang.THING[scene.shape],
                    "black": lang.CORNERS[scene.shape]}[scene.background]
        assert qa.answer == expected
        assert qa.answer not in (*COLOURS, *SHAPES)


def test_vizwiz_questions_on_obscured_photos_are_unanswerable():
    rng = random.Random(3)
    scene = sample_scene(rng)
    assert {lang.vizwiz_question(scene, False, rng).answer for _ in range(20)} == {lang.UNANSWERABLE}
    assert lang.UNANSWERABLE not in {lang.vizwiz_question(scene, True, rng).answer for _ in range(20)}


def test_ten_annotators_mostly_agree_and_noise_stays_in_the_answer_space():
    rng = random.Random(4)
    qa = lang.QA("what color is the circle?", "red", ("blue", "green"), "what color is the", "other")
    rounds = [lang.annotate(qa, rng) for _ in range(200)]
    assert all(len(r) == 10 and set(r) <= {"red", "blue", "green"} for r in rounds)
    agreement = sum(r.count("red") for r in rounds) / 2000
    assert 0.85 < agreement < 0.95
    assert lang.majority(["a", "b", "b", "a"], preferred="a") == "a"
    assert lang.majority(["a", "b", "b"], preferred="a") == "b"


def test_a_meme_is_hateful_only_when_an_insulting_text_meets_pointy_shapes():
    insult = f"{lang.MEME_SUBJECTS[0]} {lang.MEME_INSULTS[0]}"
    nice = f"{lang.MEME_SUBJECTS[0]} {lang.MEME_NICE[0]}"
    assert lang.is_hateful(insult, "triangle") and lang.is_hateful(insult, "diamond")
    assert not lang.is_hateful(insult, "circle")  # the image decides: a benign confounder
    assert not lang.is_hateful(nice, "triangle")  # and so does the text
    rng = random.Random(5)
    texts = [lang.meme_text(rng) for _ in range(500)]
    assert 0.7 < sum(insult for _, insult in texts) / 500 < 0.9


def test_rename_swaps_every_colour_word_for_the_given_name():
    names = {"red": "crimson", "orange": "amber", "yellow": "golden", "green": "emerald", "blue": "navy",
             "purple": "violet"}
    assert lang.rename("two red circles on a white background", names) == "two crimson circles on a white background"
    assert lang.rename("what shape is the azure object?", names) == "what shape is the navy object?"
    assert lang.rename("three squares that are plum", names) == "three squares that are violet"
    assert lang.rename("a stop sign near a window", names) == "a stop sign near a window"  # no colour word
    assert lang.colour_words("two ruby rings, a jade tile and three blue cones") == ["ruby", "jade", "blue"]
    assert lang.colour_of("lilac") == "purple"


def test_each_colour_has_its_own_synonyms_and_they_clash_with_no_other_word():
    words = [w for ws in lang.SYNONYMS.values() for w in ws]
    assert set(lang.SYNONYMS) == set(COLOURS) and len(words) == len(set(words))
    others = (*SHAPES, *BACKGROUNDS, *lang.FRUIT.values(), *lang.THING.values(), *lang.SIGN_WORDS)
    assert not set(words) & set(others)
    assert set(words) <= lang.answer_vocabulary()
