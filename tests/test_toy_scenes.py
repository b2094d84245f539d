import random

import numpy as np
import pytest

from flamingo_eval.toy.scenes import (
    BACKGROUNDS,
    GLYPHS,
    IMAGE_SIZE,
    PALETTE,
    SHAPES,
    draw_scene,
    draw_sign,
    obscure,
    sample_scene,
    text_width,
)


def test_a_scene_keeps_the_attributes_it_is_given_and_places_one_object_per_grid_cell():
    rng = random.Random(0)
    for count in range(1, 5):
        scene = sample_scene(rng, shape="triangle", colour="blue", count=count, background="gray")
        assert (scene.shape, scene.colour, scene.count, scene.background) == ("triangle", "blue", count, "gray")
        assert len(scene.placements) == count
        centres = {(x // 32, y // 32) for x, y, _ in scene.placements}
        assert len(centres) == count  # no two objects share a quadrant, so they never overlap


def test_a_drawn_scene_shows_its_colour_at_each_object_and_the_background_elsewhere():
    scene = sample_scene(random.Random(1), shape="square", colour="green", count=2, background="white")
    pixels = np.asarray(draw_scene(scene))
    assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    for x, y, _ in scene.placements:
        assert tuple(pixels[y, x]) == PALETTE["green"]
    assert tuple(pixels[0, 0]) == BACKGROUNDS["white"]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_draws_and_the_shapes_differ(shape):
    scenes = {s: sample_scene(random.Random(3), shape=s, colour="blue", count=1, background="black") for s in SHAPES}
    drawn = np.asarray(draw_scene(scenes[shape]))
    for other in SHAPES:
        if other != shape:
            assert not np.array_equal(drawn, np.asarray(draw_scene(scenes[other])))


def test_signs_show_their_word_in_letters_of_the_built_in_font():
    assert set(GLYPHS) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert all(len(rows) == 7 and all(len(r) == 5 for r in rows) for rows in GLYPHS.values())
    stop = np.asarray(draw_sign("stop", "red", "circle", "gray"))
    taxi = np.asarray(draw_sign("taxi", "red", "circle", "gray"))
    assert not np.array_equal(stop, taxi)
    white_letter_pixels = (stop == 255).all(axis=2).sum()
    assert white_letter_pixels > 50  # the word is drawn, in white on a red sign
    assert text_width("hotel", 2) < IMAGE_SIZE  # the longest sign word fits the image


def test_an_obscured_photo_has_almost_no_detail_left():
    scene = sample_scene(random.Random(4), count=4, background="white")
    sharp = np.asarray(draw_scene(scene)).astype(float)
    for seed in range(6):
        dull = np.asarray(obscure(draw_scene(scene), random.Random(seed))).astype(float)
        assert dull.std() < sharp.std() / 2
