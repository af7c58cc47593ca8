"""Chinese and mixed-script lines as printed on a Chinese express sheet, for ``lowres-ocr data synth``.

Kinds: carriers, sorting codes (``739 H181-02 88``), pickup-station codes (``驿 A7R``), sorting centres
(``襄阳公司包``), place names from province to street, full addresses, person names (sometimes masked,
``张*华``), company names, phone numbers (``135****6689``), tracking numbers, dates, item descriptions.
Names come from ``resources/zh_*.txt`` (one item a line; ``zh_places.txt`` holds one prefecture a line:
province, city, then its districts and counties).

Leak-free split: a place or person name is *held out* when CRC-32 of its UTF-8 bytes mod 100 is below
``HOLDOUT_PERCENT``. The ``train`` generator only ever uses names that are not held out. The ``test`` generator
takes its places from the (province, city, district) rows with a held-out city or district (the other one may be
a train name) and its person and composed names from the held-out ones. The 34 provincial names (and the
municipalities / SARs, which are cities too) are shared: every address needs one.
Composed names (streets, estates, towns, landmarks, person names) are drawn again until they fall in the
split. ``trace`` (a list, when set) receives every held-out-able name a line was built from, for the tests.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from lowres_ocr.core.charset import MAX_LABEL_LENGTH

RESOURCES = Path(__file__).resolve().parent / "resources"
HOLDOUT_PERCENT = 15
SOURCES = ("zh", "mixed")
UPPER, DIGITS = "ABCDEFGHJKLMNPQRSTUVWXYZ", "0123456789"
MOBILE_PREFIXES = ("130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "145", "147", "150",
                   "151", "152", "153", "155", "156", "157", "158", "159", "166", "172", "173", "175", "176",
                   "177", "178", "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", "191",
                   "198", "199")
#: where a prefecture's short name ends (襄阳市 -> 襄阳, 恩施土家族苗族自治州 -> 恩施, 阿克苏地区 -> 阿克苏)
_SHORT_CUTS = ("土家族", "苗族", "藏族", "彝族", "傣族", "景颇族", "哈尼族", "壮族", "白族", "傈僳族", "布依族",
               "侗族", "回族", "朝鲜族", "蒙古", "哈萨克", "柯尔克孜", "羌族", "自治州", "特别行政区", "地区",
               "盟", "林区", "市")
Place = tuple[str, str, str]  # province, city, district ("" for a city without districts)


def held_out(name: str) -> bool:
    """True when ``name`` belongs to the test split only."""
    return zlib.crc32(name.encode("utf-8")) % 100 < HOLDOUT_PERCENT


@cache
def items(name: str) -> tuple[str, ...]:
    """The non-comment lines of ``resources/zh_<name>.txt``."""
    text = (RESOURCES / f"zh_{name}.txt").read_text(encoding="utf-8")
    return tuple(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))


@lru_cache(maxsize=1)
def places() -> tuple[Place, ...]:
    """Every (province, city, district) of ``zh_places.txt``; a city without districts gives one row with ""."""
    rows: list[Place] = []
    for line in items("places"):
        province, city, *districts = line.split()
        rows.extend((province, city, d) for d in districts or [""])
    return tuple(rows)


@lru_cache(maxsize=1)
def _provinces() -> frozenset[str]:
    return frozenset(p for p, _, _ in places())


def shared(name: str) -> bool:
    """Province-level names, used by both splits."""
    return name in _provinces()


def place_split(place: Place) -> str:
    """``test`` when the city or the district of ``place`` is held out, else ``train``."""
    _, city, district = place
    return "test" if (not shared(city) and held_out(city)) or (district and held_out(district)) else "train"


def short_city(city: str) -> str:
    """The name a sorting centre is called by: 襄阳市 -> 襄阳."""
    cuts = [i for i in (city.find(c) for c in _SHORT_CUTS) if i > 0]
    return city[:min(cuts)] if cuts else city


def _pick(rng: np.random.Generator, seq: tuple[str, ...] | list[str] | str) -> str:
    return seq[int(rng.random() * len(seq))]


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(DIGITS[i] for i in (rng.random(n) * 10).astype(np.intp))


def _letters(rng: np.random.Generator, n: int) -> str:
    return "".join(UPPER[i] for i in (rng.random(n) * len(UPPER)).astype(np.intp))


def mask_phone(phone: str) -> str:
    """135****6689: the middle four digits of a mobile number hidden, as carriers print it."""
    return phone[:3] + "****" + phone[7:]


def mask_name(name: str, rng: np.random.Generator) -> str:
    """张*华 / 张** / *华 style masking of a person name."""
    kind = rng.random()
    if kind < 0.5 and len(name) >= 3:
        return name[0] + "*" * (len(name) - 2) + name[-1]
    if kind < 0.8:
        return name[0] + "*" * (len(name) - 1)
    return "*" + name[1:]


class ExpressText:
    """Random express-sheet lines of one split; ``line(rng, source)`` is the entry point."""

    def __init__(self, split: str) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be train or test, got {split!r}")
        self.split = split
        self.trace: list[str] | None = None
        self.places = tuple(p for p in places() if place_split(p) == split)
        self.cities = tuple(sorted({c for p, c, _ in self.places if not shared(c)
                                    and held_out(c) == (split == "test")}))
        self.carriers = tuple(ln.split() for ln in items("carriers"))

    # ------------------------------------------------------------------------------------ names
    def _note(self, *names: str) -> None:
        if self.trace is not None:
            self.trace.extend(n for n in names if n and not shared(n))

    def _composed(self, rng: np.random.Generator, make: Callable[[], str]) -> str:
        """A composed name of this split (drawn again until it is; held-out names are 15% of draws)."""
        for _ in range(200):
            name = make()
            if held_out(name) == (self.split == "test"):
                self._note(name)
                return name
        raise RuntimeError(f"no {self.split} name among 200 draws")  # cannot happen with 15% / 85%

    def person(self, rng: np.random.Generator) -> str:
        """A full person name of this split: surname + one or two given-name characters."""
        def make() -> str:
            given = _pick(rng, items("given_chars")) + (_pick(rng, items("given_chars")) if rng.random() < 0.7 else "")
            return _pick(rng, items("surnames")) + given
        return self._composed(rng, make)

    def street(self, rng: np.random.Generator) -> str:
        return self._composed(rng, lambda: _pick(rng, items("street_roots")) + _pick(rng, items("street_kinds")))

    def estate(self, rng: np.random.Generator) -> str:
        return self._composed(rng, lambda: _pick(rng, items("estate_roots")) + _pick(rng, items("estate_kinds")))

    def town(self, rng: np.random.Generator) -> str:
        kinds = ("镇", "街道", "乡", "")
        return self._composed(rng, lambda: _pick(rng, items("street_roots")) + _pick(rng, kinds))

    def landmark(self, rng: np.random.Generator) -> str:
        return self._composed(rng, lambda: _pick(rng, items("street_roots")) + _pick(rng, items("landmark_kinds")))

    def place(self, rng: np.random.Generator) -> Place:
        p = self.places[int(rng.random() * len(self.places))]
        self._note(p[1], p[2])
        return p

    def city(self, rng: np.random.Generator) -> str:
        city = _pick(rng, self.cities)
        self._note(city)
        return city

    # ------------------------------------------------------------------------------------ numbers
    def phone(self, rng: np.random.Generator) -> str:
        mobile = _pick(rng, MOBILE_PREFIXES) + _digits(rng, 8)
        kind = rng.random()
        if kind < 0.6:
            return mask_phone(mobile)
        if kind < 0.75:
            return mobile
        if kind < 0.9:
            return f"0{_digits(rng, int(rng.integers(2, 4)))}-{_digits(rng, 8)}"  # landline with area code
        return f"{mobile}转{_digits(rng, 4)}"  # virtual number with an extension

    def tracking(self, rng: np.random.Generator) -> tuple[str, str]:
        """(carrier short name, tracking number in that carrier's style)."""
        short, prefix, n, *_ = self.carriers[int(rng.random() * len(self.carriers))]
        return short, ("" if prefix == "-" else prefix) + _digits(rng, int(n))

    def sorting_code(self, rng: np.random.Generator) -> str:
        d, u = lambda n: _digits(rng, n), lambda n: _letters(rng, n)
        return [
            lambda: f"{d(3)} {u(1)}{d(3)}-{d(2)} {d(2)}",
            lambda: f"{d(3)}-{d(3)}-{d(3)}",
            lambda: f"{u(1)}{d(2)}-{d(2)} {d(3)}",
            lambda: f"{d(3)} {d(2)}{u(1)}",
        ][int(rng.integers(4))]()

    def station(self, rng: np.random.Generator) -> str:
        if rng.random() < 0.6:
            return f"驿 {_letters(rng, 1)}{_digits(rng, 1)}{_letters(rng, 1)}"
        return f"取件码 {_digits(rng, 2)}-{_digits(rng, 1)}-{_digits(rng, 4)}"

    def date(self, rng: np.random.Generator, cjk: bool = False) -> str:
        """A date as printed on sheets; ``cjk``: only the forms with Chinese characters."""
        y, m, d = int(rng.integers(2019, 2031)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
        hh, mm = int(rng.integers(0, 24)), int(rng.integers(0, 60))
        return [f"{y}年{m}月{d}日", f"{m:02d}月{d:02d}日 {hh:02d}:{mm:02d}", f"寄件日期:{y}-{m:02d}-{d:02d}",
                f"{y}/{m:02d}/{d:02d} {hh:02d}:{mm:02d}", f"{y}-{m:02d}-{d:02d}"][int(rng.integers(3 if cjk else 5))]

    def building(self, rng: np.random.Generator) -> str:
        n, u, f, r = int(rng.integers(1, 40)), int(rng.integers(1, 7)), int(rng.integers(1, 33)), int(rng.integers(1, 9))
        return [f"{n}栋{u}单元{f}{r:02d}", f"{n}号楼{u}单元{f}{r:02d}室", f"{_letters(rng, 1)}座{f}{r:02d}"][
            int(rng.integers(3))]


def fit(parts: list[str], limit: int = MAX_LABEL_LENGTH) -> str:
    """``parts`` joined, the trailing ones dropped (never cut) until the line is at most ``limit`` long."""
    out = ""
    for part in parts:
        if len(out) + len(part) > limit:
            break
        out += part
    return out.strip()


# ---------------------------------------------------------------------------------------------- lines
def address(t: ExpressText, rng: np.random.Generator) -> str:
    """湖北省襄阳市樊城区鱼梁洲锦绣家园 style: province to estate, at most 25 characters."""
    province, city, district = t.place(rng)
    parts = [province] if rng.random() < 0.7 and province != city else []
    parts += [city, district]
    if rng.random() < 0.3:
        parts.append(t.town(rng))
    if rng.random() < 0.6:
        parts.append(t.street(rng) + f"{int(rng.integers(1, 999))}号")
    tail = rng.random()
    if tail < 0.55:
        parts.append(t.estate(rng) + (t.building(rng) if rng.random() < 0.5 else ""))
    elif tail < 0.75:
        parts.append(t.landmark(rng))
    return fit(parts)


def place_name(t: ExpressText, rng: np.random.Generator) -> str:
    """One level (or two adjacent levels) of an address: 湖北省襄阳市, 樊城区, 幸福路, 锦绣家园 ..."""
    province, city, district = t.place(rng)
    return [lambda: province + city if province != city else city, lambda: city + district,
            lambda: district or city, lambda: t.town(rng), lambda: t.street(rng), lambda: t.estate(rng),
            lambda: t.landmark(rng), lambda: (district or city) + t.street(rng)][int(rng.integers(8))]()


def hub(t: ExpressText, rng: np.random.Generator) -> str:
    """A sorting centre: 襄阳公司包, 武汉转运中心, 集包地:杭州 ..."""
    kind, city = _pick(rng, items("hub_kinds")), short_city(t.city(rng))
    return f"{kind}:{city}" if kind == "集包地" else city + kind


def carrier(t: ExpressText, rng: np.random.Generator) -> str:
    names = t.carriers[int(rng.random() * len(t.carriers))][3:]
    return _pick(rng, names)


def person_line(t: ExpressText, rng: np.random.Generator) -> str:
    name = t.person(rng)
    kind = rng.random()
    if kind < 0.35:
        name = mask_name(name, rng)
    elif kind < 0.5:
        name = name[0] + _pick(rng, ("先生", "女士"))
    return (_pick(rng, ("收件人:", "寄件人:", "收:", "寄:")) if rng.random() < 0.3 else "") + name


def company(t: ExpressText, rng: np.random.Generator) -> str:
    head = short_city(t.city(rng)) if rng.random() < 0.5 else ""
    return fit([head + _pick(rng, items("company_roots")) + _pick(rng, items("company_kinds"))])


def item_line(t: ExpressText, rng: np.random.Generator) -> str:
    item = _pick(rng, items("items"))
    return [item, f"托寄物:{item}", f"内件:{item}", f"物品:{item} x{int(rng.integers(1, 6))}"][int(rng.integers(4))]


def labelled_phone(t: ExpressText, rng: np.random.Generator) -> str:
    return _pick(rng, ("电话:", "手机:", "联系电话:")) + t.phone(rng)


def labelled_tracking(t: ExpressText, rng: np.random.Generator) -> str:
    short, number = t.tracking(rng)
    return (_pick(rng, ("运单号:", "单号:")) if rng.random() < 0.5 else short + " ") + number


def person_phone(t: ExpressText, rng: np.random.Generator) -> str:
    return fit([mask_name(t.person(rng), rng) if rng.random() < 0.5 else t.person(rng), " ", t.phone(rng)])


def hub_code(t: ExpressText, rng: np.random.Generator) -> str:
    return fit([hub(t, rng), " ", t.sorting_code(rng)])


def numbered_address(t: ExpressText, rng: np.random.Generator) -> str:
    """An address tail with numbers: 幸福路18号锦绣家园3栋2单元501."""
    return fit([t.street(rng) + f"{int(rng.integers(1, 999))}号", t.estate(rng), t.building(rng)])


def weight(t: ExpressText, rng: np.random.Generator) -> str:
    return [f"重量:{rng.integers(0, 30)}.{rng.integers(0, 10)}kg", f"件数:{rng.integers(1, 9)}",
            f"计费重量 {rng.integers(1, 30)}kg", f"运费:{rng.integers(5, 99)}元"][int(rng.integers(4))]


def date_line(t: ExpressText, rng: np.random.Generator) -> str:
    return t.date(rng)


def zh_date_line(t: ExpressText, rng: np.random.Generator) -> str:
    return t.date(rng, cjk=True)


def station_line(t: ExpressText, rng: np.random.Generator) -> str:
    return t.station(rng)


def sorting_line(t: ExpressText, rng: np.random.Generator) -> str:
    return t.sorting_code(rng)


def phone_line(t: ExpressText, rng: np.random.Generator) -> str:
    return t.phone(rng)


def tracking_line(t: ExpressText, rng: np.random.Generator) -> str:
    return t.tracking(rng)[1]


LineKind = Callable[[ExpressText, np.random.Generator], str]
#: source -> (line kind, weight); every zh line has a CJK character, every mixed line an ASCII letter or digit
KINDS: dict[str, tuple[tuple[LineKind, float], ...]] = {
    "zh": ((address, 0.25), (place_name, 0.14), (person_line, 0.1), (hub, 0.08), (carrier, 0.08),
           (company, 0.08), (item_line, 0.07), (zh_date_line, 0.05), (labelled_phone, 0.05),
           (labelled_tracking, 0.05), (station_line, 0.05)),
    "mixed": ((labelled_tracking, 0.15), (person_phone, 0.15), (numbered_address, 0.12), (hub_code, 0.1),
              (station_line, 0.08), (sorting_line, 0.1), (phone_line, 0.08), (tracking_line, 0.07),
              (date_line, 0.06), (weight, 0.09)),
}


def line(t: ExpressText, rng: np.random.Generator, source: str) -> str:
    """One random line of ``source`` (zh or mixed)."""
    if source not in KINDS:
        raise ValueError(f"source must be one of {', '.join(KINDS)}, got {source!r}")
    kinds = KINDS[source]
    cdf = np.cumsum([w for _, w in kinds])
    return kinds[min(int(np.searchsorted(cdf / cdf[-1], rng.random(), side="right")), len(kinds) - 1)][0](t, rng)


@lru_cache(maxsize=2)
def generator(split: str) -> ExpressText:
    """The (cached) line generator of ``split``."""
    return ExpressText(split)
