from flamingo_eval.prompt import Chunk, Image, Prompt, chunk_records


def test_samples_record_a_single_image_chunk_as_they_always_did():
    im = Image(key="coco/val2014/x.jpg")
    assert chunk_records([Chunk(None, "Output:a dog"), Chunk(im, "Output:")]) == [
        {"image": None, "text": "Output:a dog"}, {"image": "coco/val2014/x.jpg", "text": "Output:"}]


def test_a_chunk_with_several_images_also_records_every_key_in_order():
    a, b = Image(key="vlicl/a.png"), Image(key="vlicl/b.png")
    prompt = Prompt([Chunk(a, "Q\nAnswer: 3", answer="3", more_images=(b,))])
    assert chunk_records(prompt) == [{"image": "vlicl/a.png", "text": "Q\nAnswer: 3", "answer": "3",
                                      "images": ["vlicl/a.png", "vlicl/b.png"]}]
    assert prompt.images() == [a, b]
