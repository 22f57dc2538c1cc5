"""The painters of the synthetic world: each draws one object filling a transparent square canvas."""

from __future__ import annotations

import cmath
import math
import random
from collections.abc import Callable

from PIL import ImageDraw

Color = tuple[int, int, int]
Painter = Callable[[ImageDraw.ImageDraw, int, random.Random], None]
Ink = ImageDraw.ImageDraw
Rng = random.Random
_BRIGHT: tuple[Color, ...] = ((200, 40, 40), (40, 90, 180), (240, 180, 30), (60, 140, 60))


def _jitter(rng: random.Random, color: Color, amount: int = 30) -> Color:
    r, g, b = (max(0, min(255, c + rng.randint(-amount, amount))) for c in color)
    return (r, g, b)


def _pick(rng: Rng, *colors: Color, amount: int = 20) -> Color:
    return _jitter(rng, rng.choice(colors), amount)


def _at(s: int, *fractions: float) -> list[float]:  # coordinates as fractions of the side
    return [f * s for f in fractions]


def _darker(color: Color, k: float = 0.6) -> Color:
    return (int(color[0] * k), int(color[1] * k), int(color[2] * k))


def _orange(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.ellipse((2, 4, s - 2, s - 2), fill=_jitter(rng, (245, 140, 20), 15), outline=(200, 100, 10), width=2)
    for _ in range(8):  # dimpled peel
        x, y = rng.randint(s // 4, 3 * s // 4), rng.randint(s // 4, 3 * s // 4)
        d.point((x, y), fill=(210, 110, 10))
    d.ellipse((s // 2 - s // 10, 0, s // 2 + s // 6, s // 8), fill=(40, 140, 40))  # leaf


def _sports_ball(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    base = rng.choice([(240, 240, 240), (230, 120, 40), (250, 230, 60), (60, 120, 220)])
    d.ellipse((2, 2, s - 2, s - 2), fill=_jitter(rng, base, 15), outline=(20, 20, 20), width=2)
    d.arc((-s // 3, 2, s // 2, s - 2), -60, 60, fill=(20, 20, 20), width=2)
    d.arc((s // 2, 2, s + s // 3, s - 2), 120, 240, fill=(20, 20, 20), width=2)


def _apple(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(200, 30, 30), (120, 190, 50)]), 20)
    d.ellipse((2, s // 6, s // 2 + 4, s - 2), fill=color)
    d.ellipse((s // 2 - 4, s // 6, s - 2, s - 2), fill=color)
    d.line((s // 2, s // 5, s // 2 + 3, 2), fill=(90, 50, 20), width=3)  # stem


def _banana(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, (245, 215, 50), 15)
    d.chord((2, -s // 2, s - 2, s - 8), 20, 160, fill=color, outline=(150, 120, 20), width=2)
    d.chord((s // 6, -s // 2 + 6, s - s // 6, s - 22), 20, 160, fill=(0, 0, 0, 0))


def _clock(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.ellipse((2, 2, s - 2, s - 2), fill=_jitter(rng, (250, 250, 240), 8), outline=(30, 30, 30), width=3)
    c = s // 2
    for i in range(12):  # hour ticks
        a = i * math.pi / 6
        inner, outer = 0.38 * s, 0.45 * s
        cos, sin = math.cos(a), math.sin(a)
        d.line(
            (c + inner * cos, c + inner * sin, c + outer * cos, c + outer * sin), fill=(30, 30, 30), width=1
        )
    hour, minute = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
    d.line((c, c, c + 0.22 * s * math.cos(hour), c + 0.22 * s * math.sin(hour)), fill=(0, 0, 0), width=3)
    d.line((c, c, c + 0.36 * s * math.cos(minute), c + 0.36 * s * math.sin(minute)), fill=(0, 0, 0), width=2)


def _plate(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.ellipse((2, 2, s - 2, s - 2), fill=_jitter(rng, (245, 245, 245), 8), outline=(150, 150, 160), width=2)
    d.ellipse((s // 5, s // 5, s - s // 5, s - s // 5), outline=(190, 190, 200), width=2)  # the rim


def _donut(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.ellipse((2, 2, s - 2, s - 2), fill=_jitter(rng, (190, 120, 60), 15))
    d.ellipse((s // 8, s // 8, s - s // 8, s - s // 8), fill=_jitter(rng, (240, 130, 180), 20))  # icing
    d.ellipse((s // 3 + 2, s // 3 + 2, s - s // 3 - 2, s - s // 3 - 2), fill=(0, 0, 0, 0))  # the hole


def _pizza(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.ellipse((2, 2, s - 2, s - 2), fill=(225, 170, 80), outline=(160, 100, 40), width=4)
    for _ in range(6):
        x, y, r = rng.randint(s // 4, 3 * s // 4), rng.randint(s // 4, 3 * s // 4), max(2, s // 12)
        d.ellipse((x - r, y - r, x + r, y + r), fill=(180, 30, 30))


def _cup(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(240, 240, 240), (60, 110, 200), (200, 60, 60)]), 15)
    d.polygon([(s // 6, s // 5), (3 * s // 4, s // 5), (2 * s // 3, s - 4), (s // 4, s - 4)], fill=color)
    d.arc((s // 2, s // 3, s - 2, 2 * s // 3 + 4), -90, 90, fill=color, width=max(2, s // 14))  # handle


def _bottle(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(40, 140, 60), (120, 70, 30), (90, 160, 220)]), 15)
    d.rectangle((s // 3, s // 3, 2 * s // 3, s - 2), fill=color)
    d.rectangle((s // 2 - s // 12, 2, s // 2 + s // 12, s // 3), fill=color)
    d.rectangle((s // 2 - s // 10, 2, s // 2 + s // 10, s // 12), fill=(200, 200, 200))  # cap


def _car(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(200, 30, 30), (30, 80, 200), (230, 230, 230), (40, 40, 40)]), 20)
    d.rectangle((2, s // 2, s - 2, 3 * s // 4), fill=color)
    d.polygon([(s // 5, s // 2), (s // 3, s // 4), (2 * s // 3, s // 4), (4 * s // 5, s // 2)], fill=color)
    d.rectangle((s // 3 + 2, s // 4 + 4, s // 2 - 2, s // 2), fill=(170, 210, 240))  # window
    for x in (s // 4, 3 * s // 4):
        d.ellipse((x - s // 8, 3 * s // 4 - s // 8, x + s // 8, 3 * s // 4 + s // 8), fill=(20, 20, 20))


def _bus(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(240, 190, 30), (200, 40, 40), (40, 120, 200)]), 15)
    d.rectangle((2, s // 4, s - 2, 3 * s // 4), fill=color, outline=(40, 40, 40), width=2)
    for i in range(4):  # a row of windows
        x = 6 + i * (s - 10) // 4
        d.rectangle((x, s // 4 + 5, x + (s - 10) // 4 - 4, s // 2 - 2), fill=(170, 210, 240))
    for x in (s // 5, 4 * s // 5):
        d.ellipse((x - s // 10, 3 * s // 4 - s // 10, x + s // 10, 3 * s // 4 + s // 10), fill=(20, 20, 20))


def _traffic_light(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.rectangle((s // 3, 2, 2 * s // 3, s - 2), fill=(30, 30, 30))
    step = (s - 4) // 3
    lit = rng.randrange(3)
    for i, color in enumerate([(230, 30, 30), (240, 200, 20), (30, 200, 60)]):
        cy, r = 2 + step * i + step // 2, min(s // 6, step // 2) - 1
        shade = color if i == lit else tuple(c // 3 for c in color)
        d.ellipse((s // 2 - r, cy - r, s // 2 + r, cy + r), fill=shade)


def _stop_sign(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    c, r = s / 2, s / 2 - 2
    angles = [math.pi / 8 + i * math.pi / 4 for i in range(8)]
    points = [(c + r * math.cos(a), c + r * math.sin(a)) for a in angles]
    d.polygon(points, fill=_jitter(rng, (200, 20, 20), 12), outline=(255, 255, 255))
    d.rectangle((s // 4, s // 2 - s // 14, 3 * s // 4, s // 2 + s // 14), fill=(255, 255, 255))


def _fire_hydrant(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(210, 30, 30), (240, 200, 30)]), 15)
    d.rectangle((s // 3, s // 4, 2 * s // 3, s - 6), fill=color)
    d.ellipse((s // 3, s // 8, 2 * s // 3, s // 3), fill=color)
    d.rectangle((s // 5, s // 2 - s // 12, 4 * s // 5, s // 2 + s // 12), fill=color)  # outlets
    d.rectangle((s // 4, s - 8, 3 * s // 4, s - 2), fill=(90, 90, 90))


def _tv(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.rectangle((2, s // 8, s - 2, 3 * s // 4), fill=(25, 25, 25))
    d.rectangle((6, s // 8 + 4, s - 6, 3 * s // 4 - 4), fill=_jitter(rng, (70, 130, 200), 40))
    d.rectangle((s // 2 - 3, 3 * s // 4, s // 2 + 3, s - 6), fill=(25, 25, 25))  # stand
    d.rectangle((s // 3, s - 6, 2 * s // 3, s - 2), fill=(25, 25, 25))


def _laptop(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    body = _jitter(rng, rng.choice([(180, 180, 190), (40, 40, 45)]), 10)
    d.rectangle((s // 6, s // 6, 5 * s // 6, 3 * s // 5), fill=body)
    d.rectangle(
        (s // 6 + 4, s // 6 + 4, 5 * s // 6 - 4, 3 * s // 5 - 3), fill=_jitter(rng, (90, 160, 220), 40)
    )
    d.polygon(
        [(s // 6, 3 * s // 5), (5 * s // 6, 3 * s // 5), (s - 2, 4 * s // 5), (2, 4 * s // 5)], fill=body
    )
    for row in range(2):  # keys
        y = 3 * s // 5 + 3 + row * 5
        d.line((s // 4, y, 3 * s // 4, y), fill=(90, 90, 90), width=1)


def _book(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(40, 80, 160), (160, 40, 40), (40, 130, 70)]), 20)
    d.rectangle((s // 5, 4, 4 * s // 5, s - 4), fill=color, outline=(20, 20, 20), width=2)
    d.line((s // 5 + 6, 4, s // 5 + 6, s - 4), fill=(240, 240, 240), width=3)  # the spine
    d.rectangle((s // 3 + 4, s // 4, 2 * s // 3, s // 4 + 5), fill=(240, 240, 220))  # title


def _kite(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(240, 120, 30), (220, 40, 120), (60, 160, 220)]), 20)
    c = s // 2
    d.polygon(
        [(c, 2), (s - 6, c - s // 8), (c, 3 * s // 4), (6, c - s // 8)], fill=color, outline=(60, 30, 0)
    )
    d.line((c, 2, c, 3 * s // 4), fill=(60, 30, 0), width=1)
    d.line((c, 3 * s // 4, c - s // 6, s - 2), fill=(60, 30, 0), width=2)  # the tail


def _umbrella(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(200, 30, 60), (40, 60, 160), (30, 30, 30), (240, 200, 30)]), 20)
    d.pieslice((2, s // 8, s - 2, s - s // 8), 180, 360, fill=color)
    d.line((s // 2, s // 2, s // 2, s - 6), fill=(60, 60, 60), width=2)
    d.arc((s // 2 - s // 8, s - s // 4 - 6, s // 2, s - 2), 0, 180, fill=(60, 60, 60), width=2)  # handle


def _truck(d: Ink, s: int, rng: Rng) -> None:
    cab, box = _pick(rng, *_BRIGHT), _pick(rng, (230, 230, 225), (170, 170, 175), (200, 150, 90), amount=15)
    d.rectangle(_at(s, 0.02, 0.12, 0.66, 0.74), fill=box, outline=_darker(box), width=2)  # cargo box
    d.polygon(_at(s, 0.68, 0.32, 0.84, 0.32, 0.98, 0.52, 0.98, 0.74, 0.68, 0.74), fill=cab)  # cab
    d.polygon(_at(s, 0.72, 0.37, 0.83, 0.37, 0.92, 0.51, 0.72, 0.51), fill=(170, 210, 240))
    for x in (0.15, 0.47, 0.84):
        d.ellipse(_at(s, x - 0.1, 0.64, x + 0.1, 0.84), fill=(20, 20, 20))


def _bicycle(d: Ink, s: int, rng: Rng) -> None:
    f, w = _pick(rng, *_BRIGHT, (30, 30, 30), amount=25), s // 22 + 1
    for x in (0.24, 0.76):  # two thin wheels
        d.ellipse(_at(s, x - 0.21, 0.48, x + 0.21, 0.9), outline=(30, 30, 30), width=w)
    d.line(_at(s, 0.76, 0.69, 0.7, 0.4, 0.4, 0.4, 0.24, 0.69, 0.48, 0.69, 0.4, 0.4), fill=f, width=w)
    d.line(_at(s, 0.76, 0.27, 0.66, 0.27, 0.7, 0.4, 0.48, 0.69), fill=f, width=w)  # a thin frame, no engine
    d.line(_at(s, 0.32, 0.36, 0.46, 0.36), fill=(30, 30, 30), width=w + 1)  # saddle


def _motorcycle(d: Ink, s: int, rng: Rng) -> None:
    body, tyre = _pick(rng, *_BRIGHT, (30, 30, 30)), (20, 20, 20)
    d.line(_at(s, 0.8, 0.7, 0.7, 0.3, 0.62, 0.26), fill=(120, 120, 125), width=s // 16 + 1)  # fork, bars
    for x in (0.2, 0.8):  # thick tyres round grey hubs
        d.ellipse(_at(s, x - 0.19, 0.52, x + 0.19, 0.9), fill=(160, 160, 165), outline=tyre, width=s // 9)
    d.rectangle(_at(s, 0.38, 0.54, 0.62, 0.76), fill=(100, 100, 105))  # engine block
    d.polygon(_at(s, 0.2, 0.5, 0.42, 0.36, 0.72, 0.36, 0.8, 0.54, 0.3, 0.58), fill=body)  # tank
    d.rounded_rectangle(_at(s, 0.14, 0.38, 0.5, 0.47), radius=s // 20, fill=tyre)  # seat


def _bench(d: Ink, s: int, rng: Rng) -> None:
    wood = _pick(rng, (150, 95, 45), (190, 140, 80), (50, 110, 60))
    for x, dx in ((0.1, 0.06), (0.9, -0.06)):  # iron ends: back post and leg
        d.line(_at(s, x, 0.2, x, 0.6, x + dx, 0.9), fill=(45, 45, 50), width=s // 18 + 1)
    for y in (0.22, 0.33, 0.5, 0.57):  # long slats, the gaps showing through
        d.rectangle(_at(s, 0.03, y, 0.97, y + 0.055), fill=wood, outline=_darker(wood))


def _parking_meter(d: Ink, s: int, rng: Rng) -> None:
    grey = _pick(rng, (150, 155, 160), (110, 115, 120), (70, 90, 110), amount=15)
    d.polygon(_at(s, 0.45, 0.5, 0.55, 0.5, 0.55, 0.93, 0.64, 0.98, 0.36, 0.98, 0.45, 0.93), fill=(80, 80, 85))
    d.rounded_rectangle(_at(s, 0.27, 0.04, 0.73, 0.54), radius=s // 8, fill=grey, outline=_darker(grey))
    d.ellipse(_at(s, 0.34, 0.11, 0.66, 0.37), fill=(235, 240, 215), outline=(40, 40, 40))  # dial window
    d.line(_at(s, 0.5, 0.26, rng.uniform(0.38, 0.62), 0.15), fill=(200, 30, 30), width=2)  # its needle


def _fork(d: Ink, s: int, rng: Rng) -> None:
    steel = _jitter(rng, (195, 198, 205), 15)
    d.rounded_rectangle(_at(s, 0.44, 0.45, 0.56, 0.98), radius=s // 20, fill=steel)  # handle
    d.polygon(_at(s, 0.3, 0.3, 0.7, 0.3, 0.57, 0.48, 0.43, 0.48), fill=steel)
    for i in range(4):  # tines
        d.rectangle(_at(s, 0.3 + 0.11 * i, 0.03, 0.37 + 0.11 * i, 0.33), fill=steel)


def _knife(d: Ink, s: int, rng: Rng) -> None:
    handle = _pick(rng, (40, 40, 40), (120, 70, 35), (200, 200, 205), amount=15)
    blade = _jitter(rng, (205, 208, 215), 12)
    d.polygon(_at(s, 0.42, 0.58, 0.42, 0.02, 0.5, 0.04, 0.6, 0.2, 0.6, 0.58), fill=blade)  # one-edged blade
    d.rounded_rectangle(_at(s, 0.39, 0.56, 0.63, 0.98), radius=s // 16, fill=handle)


def _spoon(d: Ink, s: int, rng: Rng) -> None:
    steel = _jitter(rng, (195, 198, 205), 15)
    d.polygon(_at(s, 0.46, 0.4, 0.54, 0.4, 0.57, 0.98, 0.43, 0.98), fill=steel)  # handle
    d.ellipse(_at(s, 0.28, 0.02, 0.72, 0.48), fill=steel, outline=_darker(steel, 0.7), width=2)  # oval bowl
    d.ellipse(_at(s, 0.38, 0.08, 0.52, 0.26), fill=(245, 245, 250))  # shine


def _bowl(d: Ink, s: int, rng: Rng) -> None:
    c = _pick(rng, (240, 240, 235), (60, 110, 190), (200, 60, 50), (230, 200, 120), amount=15)
    d.rectangle(_at(s, 0.36, 0.84, 0.64, 0.93), fill=_darker(c, 0.8))  # foot
    d.pieslice(_at(s, 0.02, -0.1, 0.98, 0.88), 0, 180, fill=c)  # half-disc body, no handle
    d.ellipse(_at(s, 0.02, 0.3, 0.98, 0.48), fill=_darker(c, 0.7), outline=c, width=2)  # opening


def _wine_glass(d: Ink, s: int, rng: Rng) -> None:
    glass, wine = (215, 228, 238), _pick(rng, (130, 20, 40), (235, 215, 120), amount=15)
    d.pieslice(_at(s, 0.24, -0.22, 0.76, 0.52), 0, 180, fill=glass, outline=(140, 150, 165), width=2)  # bowl
    d.chord(_at(s, 0.27, -0.18, 0.73, 0.49), 25, 155, fill=wine)
    d.rectangle(_at(s, 0.47, 0.5, 0.53, 0.88), fill=glass, outline=(140, 150, 165))  # thin stem
    d.ellipse(_at(s, 0.28, 0.85, 0.72, 0.96), fill=glass, outline=(140, 150, 165))  # foot


def _cake(d: Ink, s: int, rng: Rng) -> None:
    sponge, icing = _pick(rng, (235, 195, 125), (120, 70, 40)), _pick(rng, (250, 250, 245), (245, 150, 190))
    d.rectangle(_at(s, 0.08, 0.4, 0.92, 0.94), fill=sponge)
    d.rectangle(_at(s, 0.08, 0.64, 0.92, 0.7), fill=icing)  # cream between the layers
    for i in range(5):  # frosting that drips
        d.ellipse(_at(s, 0.06 + 0.176 * i, 0.32, 0.24 + 0.176 * i, 0.5), fill=icing)
    d.line(_at(s, 0.5, 0.12, 0.5, 0.36), fill=_jitter(rng, (80, 140, 230), 60), width=s // 16 + 1)  # candle
    d.ellipse(_at(s, 0.44, 0.0, 0.56, 0.13), fill=(250, 200, 40))


def _sandwich(d: Ink, s: int, rng: Rng) -> None:
    bread, crust = _jitter(rng, (240, 220, 170), 10), _jitter(rng, (180, 120, 60), 15)
    for i, c in enumerate([*rng.sample([(220, 40, 40), (250, 200, 40), (70, 170, 60)], 3), bread]):
        d.rectangle(_at(s, 0.02, 0.64 + 0.067 * i, 0.98, 0.72 + 0.067 * i), fill=c)
    d.polygon(_at(s, 0.03, 0.66, 0.97, 0.66, 0.3, 0.04), fill=bread, outline=crust, width=s // 20 + 1)


def _broccoli(d: Ink, s: int, rng: Rng) -> None:
    stem, green = _jitter(rng, (175, 205, 120), 12), _jitter(rng, (45, 125, 45), 20)
    d.polygon(_at(s, 0.4, 0.97, 0.6, 0.97, 0.7, 0.5, 0.3, 0.5), fill=stem)  # pale stem
    for i in range(7):  # a head of florets round a middle one
        z = 0.5 + 0.36j + (0.2 if i < 6 else 0) * cmath.exp(1j * (i + rng.uniform(-0.3, 0.3)))
        box = _at(s, z.real - 0.16, z.imag - 0.16, z.real + 0.16, z.imag + 0.16)
        d.ellipse(box, fill=green, outline=_darker(green), width=2)


def _carrot(d: Ink, s: int, rng: Rng) -> None:
    orange, leaf = _jitter(rng, (240, 120, 20), 15), _jitter(rng, (50, 150, 50), 20)
    for dx in (-0.14, 0.0, 0.14):  # leaves
        d.line(_at(s, 0.5, 0.3, 0.5 + dx + rng.uniform(-0.04, 0.04), 0.02), fill=leaf, width=s // 14 + 1)
    d.polygon(_at(s, 0.32, 0.3, 0.38, 0.24, 0.62, 0.24, 0.68, 0.3, 0.52, 0.98, 0.48, 0.98), fill=orange)


def _hot_dog(d: Ink, s: int, rng: Rng) -> None:
    bun, meat = _jitter(rng, (225, 170, 95), 15), _jitter(rng, (170, 60, 40), 15)
    d.rounded_rectangle(_at(s, 0.1, 0.26, 0.9, 0.6), radius=s // 7, fill=_darker(bun, 0.85))  # bun, back
    d.rounded_rectangle(_at(s, 0.01, 0.36, 0.99, 0.58), radius=s // 9, fill=meat)  # sausage, out both ends
    d.line(_at(s, 0.14, 0.5, 0.28, 0.41, 0.42, 0.5, 0.56, 0.41, 0.7, 0.5, 0.84, 0.41), fill=(245, 210, 30))
    d.rounded_rectangle(_at(s, 0.08, 0.52, 0.92, 0.8), radius=s // 7, fill=bun)  # bun, front


def _mouse(d: Ink, s: int, rng: Rng) -> None:
    body = _pick(rng, (230, 230, 235), (50, 50, 55), (150, 150, 160), amount=12)
    d.line(_at(s, 0.5, 0.25, 0.5, 0.12, 0.62, 0.03, 0.95, 0.04), fill=(70, 70, 75), width=s // 30 + 1)
    d.ellipse(_at(s, 0.24, 0.18, 0.76, 0.96), fill=body, outline=_darker(body, 0.5), width=2)  # cable, body
    d.line(_at(s, 0.26, 0.46, 0.5, 0.46, 0.5, 0.19, 0.5, 0.46, 0.74, 0.46), fill=_darker(body, 0.45))
    d.rectangle(_at(s, 0.47, 0.25, 0.53, 0.36), fill=(40, 40, 40))  # buttons split, a wheel


def _keyboard(d: Ink, s: int, rng: Rng) -> None:
    d.rounded_rectangle(_at(s, 0.02, 0.3, 0.98, 0.74), radius=3, fill=_jitter(rng, (60, 60, 65), 25))
    for i in range(31):  # three rows of keys and a space bar; flat, no screen
        x, y = (0.06 + 0.09 * (i % 10), 0.34 + 0.095 * (i // 10)) if i < 30 else (0.25, 0.625)
        d.rectangle(_at(s, x, y, x + (0.06 if i < 30 else 0.5), y + 0.06), fill=(215, 215, 220))


def _cell_phone(d: Ink, s: int, rng: Rng) -> None:
    d.rounded_rectangle(_at(s, 0.3, 0.04, 0.7, 0.96), radius=s // 10, fill=_jitter(rng, (30, 30, 35), 10))
    d.rectangle(_at(s, 0.34, 0.11, 0.66, 0.88), fill=_jitter(rng, (150, 200, 230), 60))  # bright screen
    for i in range(6):  # app icons
        x, y = 0.38 + 0.1 * (i % 3), 0.18 + 0.1 * (i // 3)
        d.rectangle(_at(s, x, y, x + 0.06, y + 0.06), fill=(255, 255, 255))


def _remote(d: Ink, s: int, rng: Rng) -> None:
    d.rounded_rectangle(_at(s, 0.37, 0.02, 0.63, 0.98), radius=s // 12, fill=_jitter(rng, (40, 40, 45), 10))
    d.ellipse(_at(s, 0.45, 0.06, 0.55, 0.13), fill=(220, 30, 30))  # power
    d.ellipse(_at(s, 0.41, 0.2, 0.59, 0.36), fill=(130, 130, 140))  # arrows pad
    for i in range(13):  # number keys, then a row of coloured ones
        x, y = (0.41 + 0.065 * (i % 3), 0.52 + 0.08 * (i // 3)) if i < 9 else (0.4 + 0.055 * (i - 9), 0.42)
        d.rectangle(_at(s, x, y, x + 0.045, y + 0.045), fill=_BRIGHT[i - 9] if i > 8 else (170, 170, 180))


def _vase(d: Ink, s: int, rng: Rng) -> None:
    c = _pick(rng, (40, 80, 170), (190, 100, 60), (120, 170, 140), (240, 235, 225), amount=15)
    p = _pick(rng, (240, 200, 40), (250, 250, 250) if sum(c) < 600 else (30, 30, 60), amount=10)  # pattern
    d.ellipse(_at(s, 0.1, 0.3, 0.9, 0.96), fill=c)  # wide belly
    d.polygon(_at(s, 0.28, 0.04, 0.72, 0.04, 0.6, 0.14, 0.6, 0.4, 0.4, 0.4, 0.4, 0.14), fill=c)  # narrow neck
    for top in (0.18, 0.32):  # painted bands
        d.arc(_at(s, 0.1, top, 0.9, top + 0.5), 25, 155, fill=p, width=s // 20 + 1)


def _potted_plant(d: Ink, s: int, rng: Rng) -> None:
    leaf, pot = _jitter(rng, (60, 160, 60), 30), _pick(rng, (190, 100, 50), (150, 90, 60), amount=15)
    for deg in (-70, -38, -10, 18, 48, 75):  # long pointed leaves
        u = -1j * cmath.exp(1j * math.radians(deg + rng.uniform(-8, 8))) * rng.uniform(0.42, 0.55)
        tips = [0.5 + 0.58j + u * k for k in (0, 0.5 + 0.15j, 1, 0.5 - 0.15j)]
        d.polygon([(z.real * s, z.imag * s) for z in tips], fill=leaf, outline=_darker(leaf))
    d.polygon(_at(s, 0.22, 0.55, 0.78, 0.55, 0.68, 0.98, 0.32, 0.98), fill=pot, outline=_darker(pot))  # pot


def _chair(d: Ink, s: int, rng: Rng) -> None:
    c, w = _pick(rng, (140, 85, 40), (200, 50, 40), (240, 240, 235), (40, 40, 45)), s // 16 + 1
    d.rectangle(_at(s, 0.28, 0.04, 0.74, 0.5), fill=c)  # the back, open in the middle
    d.rectangle(_at(s, 0.35, 0.2, 0.67, 0.42), fill=(0, 0, 0, 0))
    for x in (0.22, 0.3, 0.72, 0.8):  # four legs, the back two shorter
        d.line(_at(s, x, 0.55, x, 0.98 - 0.12 * (0.25 < x < 0.75)), fill=c, width=w)
    d.polygon(_at(s, 0.28, 0.48, 0.74, 0.48, 0.82, 0.6, 0.2, 0.6), fill=c, outline=_darker(c))  # seat


def _frisbee(d: Ink, s: int, rng: Rng) -> None:
    c = _pick(rng, (250, 60, 40), (250, 150, 20), (240, 230, 30), (120, 220, 40), (230, 40, 180), amount=15)
    d.ellipse(_at(s, 0.03, 0.3, 0.97, 0.78), fill=_darker(c))  # its thin side
    d.ellipse(_at(s, 0.03, 0.24, 0.97, 0.72), fill=c)  # flat disc seen at a slant
    d.ellipse(_at(s, 0.17, 0.33, 0.83, 0.63), outline=_darker(c, 0.7), width=s // 25 + 1)  # rim ring


PAINTERS: dict[str, Painter] = {
    p.__name__[1:].replace("_", " "): p
    for p in (
        *(_car, _bus, _traffic_light, _stop_sign, _fire_hydrant, _truck, _bicycle, _motorcycle, _bench),
        *(_parking_meter, _plate, _cup, _bottle, _pizza, _donut, _fork, _knife, _spoon, _bowl, _wine_glass),
        *(_cake, _sandwich, _orange, _apple, _banana, _broccoli, _carrot, _hot_dog, _tv, _laptop, _clock),
        *(_book, _mouse, _keyboard, _cell_phone, _remote, _vase, _potted_plant, _chair, _sports_ball),
        *(_kite, _umbrella, _frisbee),
    )
}
