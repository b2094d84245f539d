"""Toy scenes: a few same-coloured shapes on a plain background, drawn as small RGB images.

The world is deliberately tiny (6 colours x 4 shapes x 1-4 objects x 3 backgrounds) so that a small
Flamingo can learn it on CPU in minutes, and so that visually similar images (what RICES retrieves)
have the same attributes and therefore the same answers. Text is drawn with a built-in 5x7 pixel font,
so images do not depend on the fonts installed on the machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

IMAGE_SIZE = 64

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (140, 50, 180),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (235, 235, 235),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
}
MAX_COUNT = 4

# Object centres on a 2x2 grid of a 64-pixel canvas (scaled for other sizes); one object per cell.
_CELLS = ((16, 16), (48, 16), (16, 48), (48, 48))


@dataclass(frozen=True)
class Scene:
    """What an image shows: ``count`` objects of one ``shape`` and ``colour`` on a ``background``.

    ``placements`` holds (x, y, radius) per object in 64-pixel canvas units.
    """

    shape: str
    colour: str
    count: int
    background: str
    placements: tuple[tuple[int, int, int], ...]


def sample_scene(rng: random.Random, shape: str | None = None, colour: str | None = None,
                 count: int | None = None, background: str | None = None) -> Scene:
    """A random scene; any attribute given is kept, so callers can fix what a question depends on."""
    shape = shape or rng.choice(SHAPES)
    colour = colour or rng.choice(COLOURS)
    count = count or rng.randint(1, MAX_COUNT)
    background = background or rng.choice(tuple(BACKGROUNDS))
    if count == 1:
        placements = ((32 + rng.randint(-8, 8), 32 + rng.randint(-8, 8), rng.randint(12, 15)),)
    else:
        cells = sorted(rng.sample(range(len(_CELLS)), count))
        placements = tuple((_CELLS[c][0] + rng.randint(-3, 3), _CELLS[c][1] + rng.randint(-3, 3),
                            rng.randint(9, 11)) for c in cells)
    return Scene(shape, colour, count, background, placements)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float,
                fill: tuple[int, int, int]) -> None:
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "square":
        s = r * 0.85
        draw.rectangle((x - s, y - s, x + s, y + s), fill=fill)
    elif shape == "triangle":
        draw.polygon(((x, y - r), (x + r, y + r * 0.8), (x - r, y + r * 0.8)), fill=fill)
    elif shape == "diamond":
        draw.polygon(((x, y - r), (x + r * 0.8, y), (x, y + r), (x - r * 0.8, y)), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def draw_scene(scene: Scene, size: int = IMAGE_SIZE) -> Image.Image:
    """Render a scene at ``size`` pixels (the meme images draw it smaller)."""
    img = Image.new("RGB", (size, size), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(img)
    k = size / IMAGE_SIZE
    for x, y, r in scene.placements:
        _draw_shape(draw, scene.shape, x * k, y * k, r * k, PALETTE[scene.colour])
    return img


def draw_sign(word: str, sign_colour: str, icon: str, wall: str, size: int = IMAGE_SIZE) -> Image.Image:
    """A TextVQA-style image: a coloured sign with ``word`` in block letters and a small icon above it."""
    img = Image.new("RGB", (size, size), BACKGROUNDS[wall])
    draw = ImageDraw.Draw(img)
    k = size / IMAGE_SIZE
    draw.rectangle((1 * k, 24 * k, size - 1 - k, 48 * k), fill=PALETTE[sign_colour])
    _draw_shape(draw, icon, 32 * k, 12 * k, 8 * k, PALETTE[sign_colour])
    letters = (0, 0, 0) if sign_colour in ("yellow", "orange") else (255, 255, 255)
    scale = max(1, round(2 * k))
    width = text_width(word, scale)
    draw_text(img, word, ((size - width) // 2, round(36 * k) - 7 * scale // 2), scale, letters)
    return img


def obscure(img: Image.Image, rng: random.Random) -> Image.Image:
    """A VizWiz-style failed photo: a blank frame (covered lens) or a heavily blurred, darkened image."""
    if rng.random() < 0.5:
        level = rng.choice((15, 40, 200, 230))
        return Image.new("RGB", img.size, (level, level, level))
    blurred = img.filter(ImageFilter.GaussianBlur(radius=img.size[0] / 6))
    return Image.eval(blurred, lambda v: v // 2 + 20)


def add_caption_band(img: Image.Image, text: str) -> Image.Image:
    """A meme: the overlay text in white block letters on a dark band across the top."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    per_line = max(1, (img.size[0] - 2) // _ADVANCE)
    lines = _wrap(text.upper(), per_line)[:2]
    draw.rectangle((0, 0, img.size[0], 2 + len(lines) * 9), fill=(10, 10, 10))
    for i, line in enumerate(lines):
        draw_text(out, line, (2, 2 + i * 9), 1, (255, 255, 255))
    return out


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word[:width])
    return lines


# A 5x7 pixel font for A-Z ('#' = ink), one glyph per line, rows separated by spaces.
_GLYPHS_SRC = """
A .###. #...# #...# ##### #...# #...# #...#
B ####. #...# #...# ####. #...# #...# ####.
C .###. #...# #.... #.... #.... #...# .###.
D ####. #...# #...# #...# #...# #...# ####.
E ##### #.... #.... ####. #.... #.... #####
F ##### #.... #.... ####. #.... #.... #....
G .###. #...# #.... #.### #...# #...# .###.
H #...# #...# #...# ##### #...# #...# #...#
I .###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.
J ..### ...#. ...#. ...#. ...#. #..#. .##..
K #...# #..#. #.#.. ##... #.#.. #..#. #...#
L #.... #.... #.... #.... #.... #.... #####
M #...# ##.## #.#.# #.#.# #...# #...# #...#
N #...# #...# ##..# #.#.# #..## #...# #...#
O .###. #...# #...# #...# #...# #...# .###.
P ####. #...# #...# ####. #.... #.... #....
Q .###. #...# #...# #...# #.#.# #..#. .##.#
R ####. #...# #...# ####. #.#.. #..#. #...#
S .#### #.... #.... .###. ....# ....# ####.
T ##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..
U #...# #...# #...# #...# #...# #...# .###.
V #...# #...# #...# #...# #...# .#.#. ..#..
W #...# #...# #...# #.#.# #.#.# #.#.# .#.#.
X #...# #...# .#.#. ..#.. .#.#. #...# #...#
Y #...# #...# .#.#. ..#.. ..#.. ..#.. ..#..
Z ##### ....# ...#. ..#.. .#... #.... #####
"""
GLYPHS: dict[str, tuple[str, ...]] = {
    parts[0]: tuple(parts[1:]) for parts in (line.split() for line in _GLYPHS_SRC.strip().splitlines())
}
_ADVANCE = 6  # glyph width 5 + 1 column of spacing, at scale 1


def text_width(text: str, scale: int = 1) -> int:
    return max(0, len(text) * _ADVANCE - 1) * scale


def draw_text(img: Image.Image, text: str, xy: tuple[int, int], scale: int = 1,
              fill: tuple[int, int, int] = (255, 255, 255)) -> None:
    """Draw upper-cased ``text`` with the built-in font; characters without a glyph are blanks."""
    draw = ImageDraw.Draw(img)
    x0, y0 = xy
    for i, ch in enumerate(text.upper()):
        for row, bits in enumerate(GLYPHS.get(ch, ())):
            for col, bit in enumerate(bits):
                if bit == "#":
                    x = x0 + (i * _ADVANCE + col) * scale
                    y = y0 + row * scale
                    draw.rectangle((x, y, x + scale - 1, y + scale - 1), fill=fill)
