from flamingo_eval.models.flamingo.render import render
from flamingo_eval.prompt import Chunk, Image, Prompt


def test_openflamingo_rendering_of_a_zero_shot_caption_prompt():
    q = Image(key="coco/val2014/x.jpg", path="x.jpg")
    p = Prompt([Chunk(None, "Output:a dog"), Chunk(None, "Output:a cat"), Chunk(q, "Output:")], separator="\n")
    assert render(p) == "Output:a dog<|endofchunk|>\nOutput:a cat<|endofchunk|>\n<image>Output:"


def test_plain_list_prompt_has_no_separator():
    im = Image(key="m/1.png")
    assert render([Chunk(im, "A:yes"), Chunk(im, "A:")]) == "<image>A:yes<|endofchunk|><image>A:"


def test_a_chunk_with_two_images_shows_two_image_tokens_before_its_text():
    a, b, c, d = (Image(key=f"vlicl/{k}.png") for k in "abcd")
    p = Prompt([Chunk(a, "Q\nAnswer: 3", more_images=(b,)), Chunk(c, "Q\nAnswer:", more_images=(d,))])
    assert render(p) == "<image><image>Q\nAnswer: 3<|endofchunk|><image><image>Q\nAnswer:"
