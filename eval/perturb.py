"""Training pairs made by code: one fact changed (hard negatives) or only the surface changed (positives).

The verifier's model learns "would one answer serve both?" from examples. Hand-written pairs are
few, so every seed question is also turned, by the functions here, into pairs of every kind the
cache must tell apart: a number, date, unit or version changed; negation or direction flipped; an
antonym; another name, product, place or role; a qualifier or audience added, dropped or swapped;
and into the same question with typos, other casing, punctuation, fillers, greetings, politeness,
contractions or an emoji, which must be served. The word lists below are training data, not rules:
the runtime never reads them, and the model is measured on pairs written by people who never saw them.

Each function takes a text and a `random.Random` and returns the changed text, or None when it
found nothing to change (a text with no number gets no number change).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "generation"

# --- positives: the surface changes, the question does not -------------------------------------------

FILLERS = (
    "erm", "erm,", "um", "um,", "uh,", "umm", "hmm", "hmm,", "so", "so,", "ok so", "okay so", "right,",
    "well,", "quick one:", "quick question:", "quick q -", "question:", "random question:", "one more thing:",
    "sorry,", "sorry to bother you, but", "I was wondering,", "just wondering,", "basically,", "like,",
    "honestly,", "anyway,", "also,", "and", "btw", "ok,", "alright,", "hey so", "so um", "uh so", "er,",
    "ehm", "oh and", "real quick,", "dumb question, but", "not sure who to ask, but", "hopefully an easy one:",
    "can I ask,", "let me ask:",
)  # fmt: skip
GREETINGS = (
    "hi", "hi,", "hi!", "hello", "hello,", "hey", "hey,", "hey there!", "hi there,", "hello there,",
    "hi team,", "hey team!", "hello team,", "hi all,", "hey guys,", "hi everyone,", "good morning,",
    "good morning!", "good afternoon,", "good evening,", "morning!", "hiya,", "yo,", "greetings,",
    "hello support,", "hi support team,", "dear support,", "hi folks,", "howdy,", "hello again,",
    "hi, hope you're well.", "hey, hope you're doing well!", "hello, hope all is good.", "hi bot,",
    "hey assistant,", "hi chatgpt,", "hello friend,",
)  # fmt: skip
POLITE_BEFORE = (
    "please,", "please", "could you tell me", "can you tell me", "I'd like to know", "I would like to know",
    "do you know", "would you mind telling me", "could you please tell me", "can you help me:",
    "I need help:", "help please:", "can someone explain", "any idea", "would you know",
)  # fmt: skip
POLITE_AFTER = (
    "please", "please!", "thanks", "thanks!", "thank you", "thank you!", "thanks in advance", "thx",
    "ty", "cheers", "much appreciated", "appreciate it", "thanks a lot", "many thanks", "tia",
    "thanks so much!", "please and thank you", "any help appreciated", "thanks!!",
)  # fmt: skip
EMOJI = ("🙂", "🙏", "😊", "🤔", "😅", "👍", "😀", "🙃", "😬", "❓")
CONTRACTIONS = (
    ("do not", "don't"), ("does not", "doesn't"), ("did not", "didn't"), ("is not", "isn't"),
    ("are not", "aren't"), ("was not", "wasn't"), ("cannot", "can't"), ("can not", "can't"),
    ("will not", "won't"), ("would not", "wouldn't"), ("should not", "shouldn't"), ("could not", "couldn't"),
    ("have not", "haven't"), ("has not", "hasn't"), ("what is", "what's"), ("it is", "it's"),
    ("that is", "that's"), ("there is", "there's"), ("I am", "I'm"), ("I have", "I've"), ("I will", "I'll"),
    ("I would", "I'd"), ("you are", "you're"), ("we are", "we're"), ("they are", "they're"),
    ("how is", "how's"), ("where is", "where's"), ("who is", "who's"), ("let us", "let's"),
)  # fmt: skip
KEYBOARD = {
    "q": "wa", "w": "qes", "e": "wrd", "r": "etf", "t": "ryg", "y": "tuh", "u": "yij", "i": "uok", "o": "ipl",
    "p": "ol", "a": "qsz", "s": "adwx", "d": "sfec", "f": "dgrv", "g": "fhtb", "h": "gjyn", "j": "hkum",
    "k": "jli", "l": "kop", "z": "asx", "x": "zsdc", "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm",
    "m": "njk",
}  # fmt: skip
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text and not text[:2].isupper() else text


def typos(text: str, rng: random.Random, count: int | None = None) -> str | None:
    """One or two misspelled words: letters swapped, dropped, doubled or hit beside; never a number or a name."""
    words = [m for m in WORD.finditer(text) if len(m.group()) >= 4 and m.group()[0].islower()]
    if not words:
        return None
    count = count or rng.choice((1, 1, 2))
    chosen = sorted(rng.sample(words, min(count, len(words))), key=lambda m: m.start(), reverse=True)
    for match in chosen:
        word = match.group()
        i = rng.randrange(1, len(word) - 1)
        kind = rng.choice(("swap", "drop", "double", "near"))
        if kind == "swap" and word[i] != word[i + 1]:
            new = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif kind == "drop":
            new = word[:i] + word[i + 1 :]
        elif kind == "double":
            new = word[:i] + word[i] + word[i:]
        else:
            near = KEYBOARD.get(word[i].lower())
            new = word[:i] + rng.choice(near) + word[i + 1 :] if near else word[:i] + word[i + 1 :]
        text = text[: match.start()] + new + text[match.end() :]
    return text


def casing(text: str, rng: random.Random) -> str | None:
    kind = rng.choice(("lower", "lower", "upper", "title", "first"))
    changed = {
        "lower": text.lower(),
        "upper": text.upper(),
        "title": text.title(),
        "first": _lower_first(text),
    }[kind]
    return changed if changed != text else text.lower() if text.lower() != text else None


def punctuation(text: str, rng: random.Random) -> str | None:
    stripped = text.rstrip(" ?.!")
    kind = rng.choice(("none", "many", "mixed", "period", "commas", "space"))
    if kind == "none":
        changed = stripped
    elif kind == "many":
        changed = stripped + rng.choice(("??", "???", "?!", "?!?", "!!"))
    elif kind == "mixed":
        changed = stripped + rng.choice(("?.", " ?", "..?", "...", " ??"))
    elif kind == "period":
        changed = stripped + "."
    elif kind == "commas":
        changed = text.replace(",", "")
    else:
        changed = "  ".join(text.split(" ")) if rng.random() < 0.5 else f" {text}\n"
    return changed if changed != text else None


def filler(text: str, rng: random.Random) -> str | None:
    return f"{rng.choice(FILLERS)} {_lower_first(text)}"


def greeting(text: str, rng: random.Random) -> str | None:
    sep = rng.choice((" ", " ", "\n", "  "))
    return f"{rng.choice(GREETINGS)}{sep}{_lower_first(text) if rng.random() < 0.5 else text}"


def politeness(text: str, rng: random.Random) -> str | None:
    if rng.random() < 0.5:
        return f"{text.rstrip()} {rng.choice(POLITE_AFTER)}"
    before = rng.choice(POLITE_BEFORE)
    body = _lower_first(text.rstrip(" ?.!"))
    return f"{before} {body}?"


def emoji(text: str, rng: random.Random) -> str | None:
    return f"{text.rstrip()} {rng.choice(EMOJI)}"


def contraction(text: str, rng: random.Random) -> str | None:
    options = []
    for long, short in CONTRACTIONS:
        for a, b in ((long, short), (short, long)):
            pattern = re.compile(rf"\b{re.escape(a)}\b", re.IGNORECASE)
            if pattern.search(text):
                options.append((pattern, b))
    if not options:
        return None
    pattern, replacement = rng.choice(options)
    return pattern.sub(lambda m: _match_case(m.group(), replacement), text, count=1)


def _match_case(original: str, replacement: str) -> str:
    return replacement[:1].upper() + replacement[1:] if original[:1].isupper() else replacement


# How people type the same word differently: digits for small counts, British or American spelling,
# text-speak, the words everyone mixes up. Data for the generator only: the verifier has no word lists.
COUNTS = (
    ("two", "2"), ("three", "3"), ("four", "4"), ("five", "5"), ("six", "6"), ("seven", "7"),
    ("eight", "8"), ("nine", "9"), ("ten", "10"), ("twelve", "12"), ("fifteen", "15"), ("twenty", "20"),
)  # fmt: skip
SPELLINGS = (
    ("center", "centre"), ("color", "colour"), ("favorite", "favourite"), ("canceled", "cancelled"),
    ("traveling", "travelling"), ("organize", "organise"), ("license", "licence"),
    ("behavior", "behaviour"), ("analyze", "analyse"), ("catalog", "catalogue"),
    ("neighbor", "neighbour"), ("apologize", "apologise"), ("realize", "realise"), ("gray", "grey"),
    ("mom", "mum"), ("defense", "defence"), ("enroll", "enrol"), ("jewelry", "jewellery"),
)  # fmt: skip
TEXT_SPEAK = (
    ("you", "u"), ("your", "ur"), ("please", "pls"), ("without", "w/o"), ("with", "w/"), ("thanks", "thx"),
    ("because", "bc"), ("before", "b4"), ("are", "r"), ("people", "ppl"), ("message", "msg"),
    ("tomorrow", "tmrw"), ("about", "abt"), ("information", "info"), ("account", "acct"),
)  # fmt: skip
MIXED_UP = (
    ("than", "then"), ("your", "you're"), ("its", "it's"), ("there", "their"), ("to", "too"),
    ("lose", "loose"), ("affect", "effect"), ("whether", "weather"), ("a lot", "alot"), ("all right", "alright"),
)  # fmt: skip


def _swap_one(text: str, rng: random.Random, pairs: tuple[tuple[str, str], ...], both_ways: bool = True) -> str | None:
    options = []
    for a, b in pairs:
        for old, new in ((a, b), (b, a)) if both_ways else ((a, b),):
            pattern = re.compile(rf"(?<![\w/]){re.escape(old)}(?![\w/])", re.IGNORECASE)
            if pattern.search(text):
                options.append((pattern, new))
    if not options:
        return None
    pattern, replacement = rng.choice(options)
    return pattern.sub(lambda m: _match_case(m.group(), replacement), text, count=1)


def count_digits(text: str, rng: random.Random) -> str | None:
    """A small count written in digits, or in words: "two weeks" / "2 weeks"."""
    return _swap_one(text, rng, COUNTS)


def spelling(text: str, rng: random.Random) -> str | None:
    """British or American spelling: "canceled" / "cancelled"."""
    return _swap_one(text, rng, SPELLINGS)


def text_speak(text: str, rng: random.Random) -> str | None:
    return _swap_one(text, rng, TEXT_SPEAK, both_ways=False)


def mixed_up(text: str, rng: random.Random) -> str | None:
    """A word everyone types for its neighbour: "lower then last month"."""
    return _swap_one(text, rng, MIXED_UP, both_ways=False)


def apostrophes(text: str, rng: random.Random) -> str | None:
    """Contractions typed without the apostrophe: "wasnt", "ive", "dont"."""
    changed = re.sub("(?<=[A-Za-z])['\u2019](?=[A-Za-z])", "", text)
    return changed if changed != text else None


def spaces_in_words(text: str, rng: random.Random) -> str | None:
    """Two words typed as one, or one long word typed as two: "power bank" / "powerbank"."""
    pairs = list(re.finditer(r"\b([a-z]{3,}) ([a-z]{3,})\b", text))
    longs = [m for m in re.finditer(r"\b[a-z]{9,}\b", text)]
    if pairs and (not longs or rng.random() < 0.5):
        m = rng.choice(pairs)
        return text[: m.start()] + m.group(1) + m.group(2) + text[m.end() :]
    if longs:
        m = rng.choice(longs)
        cut = rng.randrange(4, len(m.group()) - 3)
        return text[: m.start() + cut] + " " + text[m.start() + cut :]
    return None


SURFACE: dict[str, Callable[[str, random.Random], str | None]] = {
    "typo": typos,
    "casing": casing,
    "punctuation": punctuation,
    "filler": filler,
    "greeting": greeting,
    "politeness": politeness,
    "emoji": emoji,
    "contraction": contraction,
    "count_digits": count_digits,
    "spelling": spelling,
    "text_speak": text_speak,
    "mixed_up": mixed_up,
    "apostrophes": apostrophes,
    "spaces_in_words": spaces_in_words,
}


def surface_noise(text: str, rng: random.Random, kinds: int | None = None) -> str:
    """The same question typed again: one to three surface changes (never the same text back)."""
    kinds = kinds or rng.choice((1, 1, 1, 2, 2, 3))
    names = rng.sample(list(SURFACE), len(SURFACE))
    changed = text
    applied = 0
    for name in names:
        if applied == kinds:
            break
        new = SURFACE[name](changed, rng)
        if new is not None and new != changed:
            changed, applied = new, applied + 1
    return changed if changed != text else f"{text} {rng.choice(POLITE_AFTER)}"


# --- negatives: one fact changes, and with it the answer --------------------------------------------

NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w])")
NUMBER_WORDS = (
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen",
    "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "million", "billion", "dozen",
)  # fmt: skip
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
UNIT_GROUPS = (
    ("km", "miles", "meters", "feet"), ("kilometers", "miles", "meters"), ("kg", "lbs", "grams", "ounces"),
    ("kilograms", "pounds", "grams", "ounces"), ("mg", "g", "mcg", "ml"), ("milligrams", "grams", "micrograms"),
    ("°C", "°F"), ("Celsius", "Fahrenheit", "Kelvin"), ("celsius", "fahrenheit"), ("cm", "inches", "mm", "m"),
    ("centimeters", "inches", "millimeters"), ("liters", "gallons", "cups", "ml"), ("litres", "gallons", "pints"),
    ("GB", "MB", "TB", "KB"), ("Mbps", "Gbps", "MB/s"), ("hours", "minutes", "days", "seconds"),
    ("hour", "minute", "day"), ("days", "weeks", "months", "years"), ("day", "week", "month", "year"),
    ("weeks", "months", "days"), ("USD", "EUR", "GBP", "CAD", "AUD", "JPY"), ("dollars", "euros", "pounds"),
    ("$", "€", "£"), ("%", " percent"), ("mph", "km/h"), ("AM", "PM"), ("am", "pm"), ("a.m.", "p.m."),
    ("tablespoons", "teaspoons", "cups"), ("tbsp", "tsp", "cup"), ("watts", "kilowatts"), ("kWh", "Wh"),
    ("sq ft", "square meters"), ("acres", "hectares"),
)  # fmt: skip


def number_change(text: str, rng: random.Random) -> str | None:
    """Another number, date, time, version, month, weekday or unit."""
    options: list[Callable[[], str | None]] = []
    numbers = list(NUMBER.finditer(text))
    if numbers:
        options += [lambda: _change_number(text, rng.choice(numbers), rng)] * 3
    words = [m for w in NUMBER_WORDS for m in re.finditer(rf"\b{w}\b", text, re.IGNORECASE)]
    if words:
        options.append(lambda: _swap_word(text, rng.choice(words), NUMBER_WORDS, rng))
    for names in (MONTHS, DAYS):
        found = [m for w in names for m in re.finditer(rf"\b{w}\b", text)]
        if found:
            options.append(lambda found=found, names=names: _swap_word(text, rng.choice(found), names, rng))
    units = _unit_matches(text)
    if units:
        options.append(lambda: _swap_unit(text, rng.choice(units), rng))
    if not options:
        return None
    return rng.choice(options)()


def _change_number(text: str, match: re.Match[str], rng: random.Random) -> str | None:
    whole, decimals = match.group(1), match.group(2)
    value = int(whole.replace(",", ""))
    if decimals is not None:  # a version or a decimal: change one part
        if rng.random() < 0.5:
            new = f"{value}.{_other_int(int(decimals), rng)}"
        else:
            new = f"{_other_int(value, rng)}.{decimals}"
    elif 1900 <= value <= 2100:
        new = str(value + rng.choice((-10, -5, -3, -2, -1, 1, 2, 3, 5)))
    else:
        new = f"{_other_int(value, rng):,}" if "," in whole else str(_other_int(value, rng))
    return text[: match.start()] + new + text[match.end() :]


def _other_int(value: int, rng: random.Random) -> int:
    choices = {value + 1, value + 2, value * 2, value * 10, max(value - 1, 0), value // 2, value * 3, value + 10}
    if value < 13:
        choices |= set(range(1, 13))
    choices.discard(value)
    return rng.choice(sorted(choices))


def _swap_word(text: str, match: re.Match[str], group: tuple[str, ...], rng: random.Random) -> str:
    word = match.group()
    others = [w for w in group if w.lower() != word.lower()]
    new = rng.choice(others)
    new = new.capitalize() if word[:1].isupper() else new.lower() if word.islower() else new
    return text[: match.start()] + new + text[match.end() :]


def _unit_matches(text: str) -> list[tuple[re.Match[str], tuple[str, ...]]]:
    found = []
    for group in UNIT_GROUPS:
        for unit in group:
            pattern = (
                rf"(?<=\d)\s?{re.escape(unit)}(?![A-Za-z])" if not unit[0].isalpha() else rf"\b{re.escape(unit)}\b"
            )
            found += [(m, group) for m in re.finditer(pattern, text)]
    return found


def _swap_unit(text: str, found: tuple[re.Match[str], tuple[str, ...]], rng: random.Random) -> str:
    match, group = found
    unit = match.group().strip()
    new = rng.choice([u for u in group if u != unit])
    spacing = " " if match.group().startswith(" ") or (new[0].isalpha() and not unit[0].isalpha()) else ""
    return text[: match.start()] + spacing + new.strip() + text[match.end() :]


AUXILIARIES = (
    ("can", "can't"), ("can", "cannot"), ("could", "couldn't"), ("should", "shouldn't"), ("would", "wouldn't"),
    ("will", "won't"), ("is", "isn't"), ("are", "aren't"), ("was", "wasn't"), ("were", "weren't"),
    ("has", "hasn't"), ("must", "mustn't"),
    ("need to", "don't need to"), ("have to", "don't have to"), ("with", "without"), ("always", "never"),
    ("allowed", "not allowed"), ("possible", "impossible"), ("safe", "unsafe"), ("legal", "illegal"),
    ("able", "unable"), ("include", "exclude"), ("includes", "excludes"), ("included", "excluded"),
    ("approved", "rejected"), ("accepted", "declined"), ("enable", "disable"), ("enabled", "disabled"),
    ("lock", "unlock"), ("install", "uninstall"), ("subscribe", "unsubscribe"), ("follow", "unfollow"),
    ("mute", "unmute"), ("block", "unblock"), ("pin", "unpin"), ("archive", "unarchive"),
    ("refundable", "non-refundable"), ("taxable", "tax-free"), ("paid", "unpaid"), ("available", "unavailable"),
)  # fmt: skip
DIRECTIONS = (
    ("increase", "decrease"), ("increase", "reduce"), ("raise", "lower"), ("up", "down"), ("turn up", "turn down"),
    ("upload", "download"), ("import", "export"), ("buy", "sell"), ("buying", "selling"), ("deposit", "withdraw"),
    ("add", "remove"), ("open", "close"), ("start", "stop"), ("before", "after"), ("above", "below"),
    ("over", "under"), ("more", "less"), ("more", "fewer"), ("most", "least"), ("hot", "cold"), ("warm", "cool"),
    ("heat", "cool"), ("warmer", "cooler"), ("faster", "slower"), ("speed up", "slow down"), ("gain", "lose"),
    ("gaining", "losing"), ("win", "lose"), ("send", "receive"), ("sent", "received"), ("lend", "borrow"),
    ("upgrade", "downgrade"), ("encrypt", "decrypt"), ("compress", "decompress"), ("push", "pull"),
    ("merge", "split"), ("join", "leave"), ("enter", "exit"), ("arrive", "depart"), ("arrival", "departure"),
    ("inbound", "outbound"), ("income", "expenses"), ("credit", "debit"),
    ("profit", "loss"), ("maximum", "minimum"), ("max", "min"), ("highest", "lowest"), ("high", "low"),
    ("tighten", "loosen"), ("expand", "shrink"), ("inflate", "deflate"), ("early", "late"),
    ("earlier", "later"), ("first", "last"), ("overweight", "underweight"), ("overpaid", "underpaid"),
    ("overcharged", "undercharged"), ("hire", "fire"), ("hiring", "firing"), ("accept", "reject"),
    ("allow", "block"), ("show", "hide"), ("visible", "hidden"), ("public", "private"), ("online", "offline"),
    ("connect", "disconnect"), ("sign in", "sign out"), ("log in", "log out"), ("login", "logout"),
    ("mount", "unmount"), ("freeze", "thaw"), ("wet", "dry"), ("heavy", "light"), ("long", "short"),
    ("longer", "shorter"), ("big", "small"), ("bigger", "smaller"), ("large", "small"), ("cheap", "expensive"),
    ("cheaper", "more expensive"), ("cheapest", "most expensive"), ("best", "worst"), ("better", "worse"),
    ("strong", "weak"), ("stronger", "weaker"), ("easier", "harder"), ("pros", "cons"),
    ("advantages", "disadvantages"), ("benefits", "risks"), ("true", "false"), ("positive", "negative"),
    ("north", "south"), ("east", "west"), ("uphill", "downhill"), ("inside", "outside"), ("indoor", "outdoor"),
    ("indoors", "outdoors"), ("turn on", "turn off"), ("switch on", "switch off"), ("forward", "backward"),
    ("ascending", "descending"), ("lowercase", "uppercase"), ("rise", "fall"), ("rising", "falling"),
    ("too hot", "too cold"), ("too high", "too low"), ("too much", "too little"), ("too big", "too small"),
    ("too fast", "too slow"), ("overcooked", "undercooked"), ("overdue", "early"), ("gained", "lost"),
    ("increased", "decreased"), ("went up", "went down"), ("go up", "go down"), ("sooner", "later"),
    ("younger", "older"), ("young", "old"), ("new", "old"), ("newest", "oldest"), ("latest", "earliest"),
    ("safe", "dangerous"), ("healthy", "unhealthy"), ("legal", "illegal"), ("pay", "get paid"),
    ("charge", "refund"), ("owe", "am owed"), ("give", "receive"), ("teach", "learn"), ("cause", "prevent"),
    ("attach", "detach"), ("zoom in", "zoom out"), ("check in", "check out"), ("plug in", "unplug"),
)  # fmt: skip


def negation(text: str, rng: random.Random) -> str | None:
    """Negation or its opposite: "can"/"can't", "with"/"without", "safe"/"unsafe".

    Never at the opening of a question: "Is it safe?" and "Isn't it safe?" ask the same thing.
    """
    if re.search(r"\b(not|never)\b|n't\b", text, re.IGNORECASE) and rng.random() < 0.7:
        return _add_not(text, rng)
    return _swap_pairs(text, AUXILIARIES, rng, skip_openings=True) or _add_not(text, rng)


def direction(text: str, rng: random.Random) -> str | None:
    """An opposite: "increase"/"decrease", "upload"/"download", "before"/"after", or A and B swapped in "A to B"."""
    swapped = _swap_ends(text, rng) if rng.random() < 0.3 else None
    return swapped or _swap_pairs(text, DIRECTIONS, rng) or _swap_ends(text, rng)


@functools.cache
def _word_pattern(word: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)


def _swap_pairs(
    text: str, pairs: tuple[tuple[str, str], ...], rng: random.Random, skip_openings: bool = False
) -> str | None:
    found = []
    for a, b in pairs:
        for old, new in ((a, b), (b, a)):
            for m in _word_pattern(old).finditer(text):
                if not (skip_openings and _opens_question(text, m.start())):
                    found.append((m, new))
    if not found:
        return None
    match, new = rng.choice(found)
    return text[: match.start()] + _match_case(match.group(), new) + text[match.end() :]


_NOT_AFTER = re.compile(r"\b(is|are|was|were|should|can|could|will|would|does|do|did|must)\b(?! not\b|n't)", re.I)


def _add_not(text: str, rng: random.Random) -> str | None:
    negated = re.search(r"\b(not|n't|never|no)\b|n't\b", text, re.IGNORECASE)
    if negated:
        word = negated.group()
        removed = {"not": "", "never": "always", "no": "a"}.get(word.lower())
        if removed is None:  # a contraction: "doesn't" -> "does"
            start = text.rfind(" ", 0, negated.start()) + 1
            full = text[start : negated.end()]
            base = {"can't": "can", "won't": "will", "cannot": "can"}.get(full.lower(), full[:-3])
            return text[:start] + base + text[negated.end() :]
        return re.sub(r"\s+", " ", text[: negated.start()] + removed + text[negated.end() :]).strip()
    options = [m for m in _NOT_AFTER.finditer(text) if m.start() > 0 and not _opens_question(text, m.start())]
    if not options:
        return None
    match = rng.choice(options)
    return text[: match.end()] + " not" + text[match.end() :]


def _opens_question(text: str, start: int) -> bool:
    """ "Is it safe" and "Isn't it safe" ask the same: an auxiliary that opens a question (after a wh-word
    or a clause break) is no place for a negation that changes the answer."""
    before = text[:start].rstrip().split()
    return not before or before[-1].lower() in WH or before[-1][-1:] in ",.?!:;"


WH = frozenset("what how why when where who which whom whose".split())

_PHRASE_END = (
    r"(?=[?.!,;]|$|\s(?:on|in|for|with|by|at|using|without|via|if|when|and|or|but|next|this|last|tomorrow|today"
    r"|tonight|before|after|during)\b)"
)
_FROM_TO = re.compile(rf"\bfrom\s+((?:\S+\s+){{0,3}}?\S+)\s+to\s+((?:\S+\s+){{0,3}}?[^\s?.!,;]+){_PHRASE_END}", re.I)
_VERB_TO = re.compile(
    rf"\b(convert|translate|change|switch|move|transfer|migrate|upgrade|port|rewrite|cast)\s+"
    rf"((?:\S+\s+){{0,2}}?\S+)\s+(to|into)\s+((?:\S+\s+){{0,2}}?[^\s?.!,;]+){_PHRASE_END}",
    re.I,
)


def _swap_ends(text: str, rng: random.Random) -> str | None:
    """ "from Boston to Denver" -> "from Denver to Boston", "convert Celsius to Fahrenheit" -> the other way."""
    match = _FROM_TO.search(text)
    if match:
        left, right = match.group(1), match.group(2)
        return text[: match.start(1)] + right + text[match.end(1) : match.start(2)] + left + text[match.end(2) :]
    match = _VERB_TO.search(text)
    if match:
        left, right = match.group(2), match.group(4)
        number = re.match(r"(\d[\d.,]*\s+)(.+)", left)  # "convert 5 miles to km" -> "convert 5 km to miles"
        if number:
            left, right = number.group(2), right
            return (
                text[: match.start(2)] + number.group(1) + right + f" {match.group(3)} " + left + text[match.end(4) :]
            )
        return text[: match.start(2)] + right + f" {match.group(3)} " + left + text[match.end(4) :]
    return None


_THAN = re.compile(
    rf"\b(?P<a>(?:\S+\s+){{0,2}}?\S+)\s+(?P<cmp>\w+er|more \w+|less \w+|better|worse)\s+than\s+"
    rf"(?P<b>(?:\S+\s+){{0,2}}?[^\s?.!,;]+){_PHRASE_END}",
    re.I,
)


def order_swap(text: str, rng: random.Random) -> str | None:
    """Two things trade places where the order is the question: "from A to B", "convert A to B", roles."""
    swapped = _swap_ends(text, rng)
    if swapped is not None:
        return swapped
    match = _THAN.search(text)
    if match:
        # "Is Python faster than Java" -> "Is Java faster than Python": the compared things, without the
        # words that open the question.
        words = match.group("a").split()
        while words and words[0].lower() in STOP:
            words.pop(0)
        right = match.group("b")
        if words and right.split()[0].lower() not in STOP:
            left = " ".join(words)
            start = match.start("a") + match.group("a").rindex(left)
            return text[:start] + right + text[start + len(left) : match.start("b")] + left + text[match.end("b") :]
    roles = [(a, b) for a, b in ROLES if re.search(rf"\b{a}s?\b", text, re.I) and re.search(rf"\b{b}s?\b", text, re.I)]
    if roles:
        a, b = rng.choice(roles)
        return _exchange(text, a, b)
    return None


_BETWEEN = re.compile(
    rf"\b(between|compare|comparing|choose between|pick between)\s+((?:\S+\s+){{0,3}}?\S+)\s+(and|with|or)\s+"
    rf"((?:\S+\s+){{0,3}}?[^\s?.!,;]+){_PHRASE_END}",
    re.I,
)
_VERSUS = re.compile(
    rf"\b((?:\S+\s+){{0,2}}?\S+)\s+(vs\.?|versus)\s+((?:\S+\s+){{0,2}}?[^\s?.!,;]+){_PHRASE_END}", re.I
)


def symmetric_swap(text: str, rng: random.Random) -> str | None:
    """Two things trade places where the order is not the question: "between A and B", "A vs B"."""
    match = _BETWEEN.search(text)
    if match:
        left, right = match.group(2), match.group(4)
        return text[: match.start(2)] + right + text[match.end(2) : match.start(4)] + left + text[match.end(4) :]
    match = _VERSUS.search(text)
    if match:
        left, right = match.group(1), match.group(3)
        return text[: match.start(1)] + right + text[match.end(1) : match.start(3)] + left + text[match.end(3) :]
    return None


STOP = frozenset(
    "a an the i you we they he she it my your our their this that these those what how why when where who "
    "is are was were be do does did can could should would will go get want need have has had me us them "
    "him her going went come way how back and or of in on at for with".split()
)

# Swappable names by kind: a question about one is another question about the next.
_ENTITY_GROUPS: list[tuple[tuple[str, ...], re.Pattern[str]]] = []


def _entities() -> list[tuple[tuple[str, ...], re.Pattern[str]]]:
    """(names, one pattern matching any of them) per kind, from eval/data/generation/entities.txt."""
    if not _ENTITY_GROUPS:
        for line in (DATA / "entities.txt").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                names = tuple(name.strip() for name in line.split("|") if name.strip())
                longest_first = sorted(names, key=len, reverse=True)
                pattern = re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, longest_first)) + r")(?![\w-])")
                _ENTITY_GROUPS.append((names, pattern))
    return _ENTITY_GROUPS


ROLES = (
    ("landlord", "tenant"), ("buyer", "seller"), ("employer", "employee"), ("sender", "recipient"),
    ("parent", "child"), ("teacher", "student"), ("doctor", "patient"), ("customer", "merchant"),
    ("client", "server"), ("husband", "wife"), ("borrower", "lender"), ("driver", "passenger"),
    ("host", "guest"), ("manager", "employee"), ("seller", "buyer"), ("debtor", "creditor"),
    ("author", "reviewer"), ("caller", "callee"), ("parent", "teenager"), ("owner", "renter"),
    ("insurer", "policyholder"), ("contractor", "homeowner"), ("subscriber", "provider"),
    ("payer", "payee"), ("mother", "father"), ("boss", "coworker"), ("master", "replica"),
    ("frontend", "backend"), ("upstream", "downstream"), ("source", "target"), ("local", "remote"),
)  # fmt: skip


def entity_swap(text: str, rng: random.Random) -> str | None:
    """Another name of the same kind (country, city, language, product, drug...), or two roles swapped."""
    found: list[tuple[re.Match[str], tuple[str, ...]]] = []
    for group, pattern in _entities():
        found += [(m, group) for m in pattern.finditer(text)]
    # The longest name wins where names overlap ("Google Drive" over "Google").
    found.sort(key=lambda f: f[0].end() - f[0].start(), reverse=True)
    kept: list[tuple[re.Match[str], tuple[str, ...]]] = []
    for m, group in found:
        if all(m.end() <= k.start() or m.start() >= k.end() for k, _ in kept):
            kept.append((m, group))
    found = kept
    roles = [(a, b) for a, b in ROLES if re.search(rf"\b{a}s?\b", text, re.I) and re.search(rf"\b{b}s?\b", text, re.I)]
    if roles and (not found or rng.random() < 0.5):
        a, b = rng.choice(roles)
        return _exchange(text, a, b)
    if not found:
        one_role = [(a, b) for a, b in ROLES for w in (a, b) if re.search(rf"\b{w}\b", text, re.I)]
        if not one_role:
            return None
        a, b = rng.choice(one_role)
        old, new = (a, b) if re.search(rf"\b{a}\b", text, re.I) else (b, a)
        return re.sub(rf"\b{old}\b", lambda m: _match_case(m.group(), new), text, count=1, flags=re.I)
    match, group = rng.choice(found)
    new = rng.choice([n for n in group if n != match.group()])
    return text[: match.start()] + new + text[match.end() :]


def _exchange(text: str, a: str, b: str) -> str:
    marker = "\x00"
    text = re.sub(rf"\b{a}", lambda m: marker + m.group()[: len(a)], text, flags=re.I)
    text = re.sub(rf"\b{b}", lambda m: _match_case(m.group(), a), text, flags=re.I)
    return re.sub(rf"{marker}{a}", lambda m: _match_case(m.group()[1:], b), text, flags=re.I)


SCOPE_SWAPS = (
    ("beginners", "experts"), ("beginners", "advanced users"), ("beginner", "advanced"), ("novice", "expert"),
    ("kids", "adults"), ("children", "adults"), ("toddlers", "teenagers"), ("babies", "toddlers"),
    ("men", "women"), ("seniors", "students"), ("students", "professionals"), ("daily", "weekly"),
    ("daily", "monthly"), ("weekly", "monthly"), ("monthly", "yearly"), ("monthly", "annual"),
    ("annually", "monthly"), ("per person", "in total"), ("per month", "per year"), ("per day", "per week"),
    ("each", "all"), ("all", "some"), ("every", "any"), ("first", "last"), ("first", "second"),
    ("morning", "evening"), ("summer", "winter"), ("spring", "autumn"), ("weekdays", "weekends"),
    ("weekday", "weekend"), ("domestic", "international"), ("short-term", "long-term"), ("personal", "business"),
    ("home", "work"), ("at home", "in the office"), ("online", "in store"), ("new", "used"), ("full-time", "part-time"),
    ("summary", "step-by-step guide"), ("briefly", "in detail"), ("overview", "detailed explanation"),
    ("mobile", "desktop"), ("iPhone", "Android"), ("Windows", "Mac"), ("free", "paid"), ("beginner's", "advanced"),
    ("small", "large"), ("single", "married"), ("individual", "family"), ("whole", "half"), ("rural", "urban"),
    ("vegetarian", "vegan"), ("gluten-free", "regular"), ("in general", "in my case"), ("always", "sometimes"),
    ("minimum", "recommended"), ("legally", "morally"), ("in theory", "in practice"),
)  # fmt: skip
# Qualifiers that fit most questions: each narrows what a right answer must cover.
QUALIFIERS = (
    "for beginners", "for kids", "for a 10-year-old", "for seniors", "for experts", "for a small business",
    "for a family of four", "in winter", "in the summer", "on weekends", "on a budget", "for free",
    "in the UK", "in Canada", "in the US", "in Germany", "in Australia", "in India", "on Android", "on iPhone",
    "on Windows", "on a Mac", "on Linux", "in under 10 minutes", "in one day", "step by step", "in one sentence",
    "in detail", "briefly", "as a student", "as a freelancer", "for the first time", "long term",
    "without spending money", "at work", "in an emergency", "for a large group", "for two people",
    "in 2020", "this year", "next month", "by tomorrow", "in the evening", "abroad", "from home",
    "with no experience", "as a non-native speaker", "for a team of 50", "for a single user", "in French",
    "without the internet", "with a limited budget", "for someone with a disability", "during the holidays",
)  # fmt: skip


def scope(text: str, rng: random.Random) -> str | None:
    """A qualifier or audience added, dropped or swapped: "for beginners", "in winter", "per person"."""
    swapped = _swap_pairs(text, SCOPE_SWAPS, rng) if rng.random() < 0.5 else None
    if swapped:
        return swapped
    qualifier = rng.choice(QUALIFIERS)
    if qualifier.split()[-1].lower() in text.lower():
        return None
    stripped = text.rstrip()
    end = len(stripped)
    while end and stripped[end - 1] in "?.!":
        end -= 1
    if end == 0:
        return None
    # Before the final question mark, or after the last clause of the question.
    return f"{stripped[:end]} {qualifier}{stripped[end:]}"


CHANGES: dict[str, Callable[[str, random.Random], str | None]] = {
    "number": number_change,
    "negation": negation,
    "direction": direction,
    "entity": entity_swap,
    "scope": scope,
}
# The category each change is reported under (the blind sets' categories).
CHANGE_CATEGORY = {
    "number": "number",
    "negation": "negation",
    "direction": "negation",
    "entity": "entity",
    "scope": "scope",
}
