"""Cheap, explainable signals that two similar texts still ask different things.

Pure functions over two strings (and their cosine similarity): numbers, dates, IDs and versions,
negation and exclusion ("without", "except", "avoid"), polarity (antonym swaps, opposite prefixes),
added qualifying phrases, scope (first/last, adults/children, all/some, superlatives),
named entities, products, languages and units, the content words that differ between the texts,
words on swapped sides of a directional word ("Fahrenheit to Celsius"), and the operators and
symbols of code (`symbols.py`). Everything is regexes and set arithmetic on a few dozen tokens:
well under a millisecond per pair, so it runs on every semantic candidate.
"""

from __future__ import annotations

import functools
import gzip
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.cache_worker.verifier.symbols import CodeSymbols, code_symbols, symbol_mismatch

# --- tokens ---------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019]*(?:[.+#][A-Za-z+#]+)*[+#]*|\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER = re.compile(r"\d+(?:\.\d+)*(?:\s*(?:am|pm)\b)?", re.IGNORECASE)
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n)\W*([A-Za-z][\w'\u2019.+#-]*)")
_APOSTROPHE = str.maketrans({"\u2019": "'"})  # a typographic apostrophe is an apostrophe
# Greek letters are read by their names, as English text uses them: "π" is "pi", "μm" is "mu m", alpha, beta.
_GREEK_LETTERS = {
    chr(code): f" {unicodedata.name(chr(code)).split()[-1].lower()} "
    for code in (*range(0x391, 0x3AA), *range(0x3B1, 0x3CA))
    if unicodedata.name(chr(code), "").startswith("GREEK")
}
_LETTER_RUN = re.compile(r"[^\W\d_]+")  # letters of any script
# Latin letters no accent-stripping reaches: "Straße", "Ærø", "Łódź" are read, not unread.
_LATIN_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ø": "o", "Ø": "O",
                                "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "\u0131": "i", "þ": "th",
                                "ð": "d", **_GREEK_LETTERS})  # fmt: skip

NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13",
    "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18",
    "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
    "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12", "half": "0.5",
}  # fmt: skip
DATE_WORDS = frozenset(
    "january february march april may june july august september october november december jan feb mar apr jun"
    " jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday yesterday today"
    " tomorrow tonight".split()
)
# "May" and "second" are also ordinary words: a date word counts only when capitalized or beside a number.
AMBIGUOUS_DATE_WORDS = frozenset({"may", "mar", "jan", "jun", "jul", "aug", "sep", "oct", "nov", "dec"})

NEGATIONS = frozenset(
    "not no non never none nothing nobody nowhere neither nor cannot cant dont doesnt didnt isnt arent wasnt werent"
    " wont wouldnt shouldnt couldnt mustnt hasnt havent hadnt aint".split()
)
NEGATING_PREFIXES = ("non-", "non", "un", "in", "im", "il", "ir", "dis", "anti-", "anti")
# Words that leave out what follows them: "without root", "skips the Vatican", "avoid eating". A text
# that leaves a thing out asks the opposite of one that names it plainly ("as root", "includes the
# Vatican", "what can I eat"); one that leaves it out in other words ("sugar-free") asks the same.
EXCLUSION_WORDS = frozenset(
    "without except excluding avoid avoids avoided avoiding skip skips skipped skipping omit omits omitted omitting"
    " lacking miss misses missed missing".split()
)
# The words that rule a thing out of what is asked ("pancakes without eggs", "all states except Alaska"),
# unless the thing is a loss: "without losing my edits" asks to keep them.
RULING_OUT = frozenset("without except excluding".split())
LOSING = frozenset("losing breaking damaging ruining hurting harming wasting deleting erasing killing".split())
# "avoid injury"/"lower the injury risk", "avoid conflicts"/"prevent conflicts": a text that keeps a
# thing away in other words does not name it plainly.
KEEP_AWAY = frozenset(
    "prevent prevents preventing avert averting stop stops stopped stopping protect protecting reduce reducing"
    " lower lowering minimize minimise limit fight combat overcome beat eliminate".split()
)
# Verbs that turn a question around ("make my laptop faster"/"fix my slow laptop", "keep food hot"/
# "stop food getting cold"): with one on one side only, an antonym among other rewording is no sign.
REVERSING_VERBS = KEEP_AWAY | frozenset("fix fixing avoid avoiding treat cure solve handle deal help helps".split())
# Verbs before the thing left out: "without needing to download", "without leaving streaks"
_EXCLUSION_HELPERS = frozenset("needing getting having leaving making causing".split())
EXCLUSION_REACH = 4  # the excluded thing: the first content word of the next four tokens
_EXCLUDING_OR_HELPER = EXCLUSION_WORDS | _EXCLUSION_HELPERS
# "sugar-free", "windowless": sugar, window left out
_LEFT_OUT = re.compile(r"\b([a-z]+)-free\b(?!-)|\b([a-z]{4,})less\b")  # read on lower-cased text
# Prefixes of opposite meaning on one stem: "overactive"/"underactive", "implicit"/"explicit" ("in"/"out"
# and "in"/"ex" are left to the word lists: "income"/"outcome", "intend"/"extend").
OPPOSITE_PREFIXES = (
    ("over", "under"), ("hyper", "hypo"), ("pre", "post"), ("inter", "intra"), ("sub", "super"),
    ("micro", "macro"), ("mono", "poly"), ("uni", "multi"), ("up", "down"), ("im", "ex"), ("min", "max"),
)  # fmt: skip
# A qualifier added to a question (`added_phrase`): one content word put in with nothing else changed
# ("cook rice" + "in a microwave", "a meal plan" + "vegetarian", "salary" + "starting"; "ever",
# "really", "in life" are filler), or a run of three among rewording (rewording brings pairs of new
# words: "get"/"retrieve all info").
MIN_INSERTED_WORDS = 1
MIN_ADDED_RUN = 3
# Politeness, asides and hedges a near-repeat adds ("Sorry to bother you", "Asking for a friend", "btw").
PHRASE_FILLER = frozenset(
    "sorry bother asking ask friend advance appreciate appreciated thought random wonder hope hoping cheers"
    " regards greetings kind kindly much lot ty thx um btw lol guys everyone folks somebody briefly simply"
    " again urgent asap precisely generally typically normally ever life world general nowadays properly"
    " correctly exactly actually really basically".split()
)
# Greetings and thanks a repeat adds or drops ("hey, ...", "... thanks!"): no part of the question, at its
# start (greetings) or end (thanks) only: "how do you say thanks in Japanese" asks about the word. "Please"
# is dropped anywhere. Not PHRASE_FILLER: "life", "world", "random", "general" and "quick" are filler beside
# a question, but part of "life insurance", "a random number", "general relativity" and "quick bread".
GREETINGS = frozenset("hi hey hello".split())
PLEASE = frozenset("please pls plz".split())
THANKS = frozenset("thanks thank thx ty".split())
# The marks a respelled question must keep, in order: a sign or an operator is no misspelling ("-5"/"5").
_MARKS = re.compile(r"[+*/=<>^~|&$#@\\€£°]|-(?=\s*[\d.(])|(?<=[\d)])\s*-")
MAX_TYPO_LENGTH = 24  # longer tokens (DNA strings, URL paths) are compared exactly: alignment is quadratic
MIN_PREFIXED_STEM = 4  # "inhale": "hale"; shorter leftovers ("in"+"to") are not one stem

# Words whose swap turns a question into its opposite (either order); compared after light stemming.
ANTONYMS = [
    ("increase", "decrease"), ("raise", "lower"), ("rise", "fall"), ("start", "stop"), ("begin", "end"),
    ("enable", "disable"), ("import", "export"), ("upload", "download"), ("max", "min"),
    ("maximum", "minimum"), ("encrypt", "decrypt"), ("encode", "decode"), ("compress", "decompress"),
    ("more", "less"), ("more", "fewer"), ("most", "least"), ("upgrade", "downgrade"), ("heat", "cool"),
    ("warm", "cool"), ("hot", "cold"), ("tighten", "loosen"), ("in", "out"), ("on", "off"), ("up", "down"),
    ("push", "pull"), ("to", "from"), ("into", "from"), ("first", "last"), ("earliest", "latest"),
    ("early", "late"), ("before", "after"), ("cheap", "expensive"), ("cheapest", "expensive"),
    ("cheapest", "fastest"), ("fast", "slow"), ("fastest", "slowest"), ("best", "worst"), ("good", "bad"),
    ("add", "remove"), ("add", "delete"), ("include", "exclude"), ("allow", "deny"), ("allow", "block"),
    ("accept", "reject"), ("open", "close"), ("buy", "sell"), ("borrow", "lend"), ("win", "lose"),
    ("gain", "lose"), ("input", "output"), ("above", "below"), ("over", "under"), ("high", "low"),
    ("higher", "lower"), ("big", "small"), ("large", "small"), ("long", "short"), ("positive", "negative"),
    ("true", "false"), ("pro", "con"), ("advantage", "disadvantage"), ("benefit", "drawback"),
    ("benefit", "risk"), ("safe", "dangerous"), ("legal", "illegal"), ("with", "without"),
    ("plus", "minus"), ("add", "subtract"), ("multiply", "divide"), ("north", "south"), ("east", "west"),
    ("left", "right"), ("top", "bottom"), ("front", "back"), ("inside", "outside"), ("lock", "unlock"),
    ("show", "hide"), ("expand", "collapse"), ("send", "receive"), ("strong", "weak"), ("heavy", "light"),
    ("dark", "light"), ("wet", "dry"), ("full", "empty"), ("young", "old"), ("new", "old"),
    ("arrive", "depart"), ("arrival", "departure"), ("enter", "exit"), ("login", "logout"),
    ("morning", "evening"), ("day", "night"), ("am", "pm"), ("minimize", "maximize"), ("shrink", "grow"),
    ("expand", "shrink"), ("attach", "detach"), ("mount", "unmount"), ("install", "uninstall"),
    ("connect", "disconnect"), ("subscribe", "unsubscribe"), ("follow", "unfollow"), ("like", "dislike"),
    ("agree", "disagree"), ("approve", "reject"), ("pass", "fail"), ("success", "failure"),
    ("profit", "loss"), ("asset", "liability"), ("debit", "credit"), ("income", "expense"),
    ("increase", "reduce"), ("speed", "slow"), ("zoom", "pan"), ("majority", "minority"),
    ("all", "one"), ("all", "first"), ("all", "some"), ("always", "never"), ("sync", "async"),
    ("synchronous", "asynchronous"), ("public", "private"), ("internal", "external"), ("client", "server"),
    ("read", "write"), ("get", "set"), ("encrypted", "plaintext"), ("static", "dynamic"),
    # technical opposites WordNet lacks
    ("keep", "discard"), ("save", "discard"), ("retain", "discard"), ("local", "remote"), ("local", "global"),
    ("frontend", "backend"), ("serialize", "deserialize"), ("upper", "lower"), ("undo", "redo"),
    ("leading", "trailing"), ("prepend", "append"), ("inbound", "outbound"), ("online", "offline"),
    ("whitelist", "blacklist"), ("allowlist", "blocklist"), ("allowlist", "denylist"),
    ("increment", "decrement"), ("plaintext", "ciphertext"), ("asc", "desc"), ("merge", "split"),
    ("join", "split"), ("portrait", "landscape"), ("big", "little"), ("inhale", "exhale"), ("key", "value"),
    ("local", "public"), ("build", "demolish"), ("build", "tear"),
    # a part against the whole: "the first chapter"/"the whole book", "before tax"/"including tax"
    ("first", "whole"), ("first", "entire"), ("last", "whole"), ("last", "entire"), ("final", "whole"),
    ("final", "entire"), ("before", "including"), ("excluding", "including"), ("per", "total"),
    ("each", "total"), ("per", "overall"),
]  # fmt: skip
_ANTONYM_KEYS = {frozenset(pair) for pair in ANTONYMS}
# WordNet's direct antonyms (written by eval/wordnet_antonyms.py): the long tail of the list above.
ANTONYM_FILE = Path(__file__).with_name("antonyms.txt")
# English words (written by eval/known_words.py): a misspelling is an edit or two from a known word and
# is not one itself ("freez"/"freeze"; "desert"/"dessert" are two words).
KNOWN_WORDS_FILE = Path(__file__).with_name("known_words.txt.gz")
# Everyday words (the embedding model's vocabulary): what a misspelled repeat may be a misspelling of.
COMMON_WORDS_FILE = Path(__file__).with_name("common_words.txt")

# Words that narrow or widen what a question asks about, by kind: which one (first, last, before),
# who (adults, children) and how much of it (all, some, only). A pair with such a word on one side
# only asks about a part of the other's subject; a pair that swaps one word of a kind for another of
# the same kind ("first"/"last", "adults"/"children", "fastest"/"cheapest") asks another question.
# ("seniors" are older people; "a senior developer" is a rank, and experienced.)
_AUDIENCES = {
    "adult": "adult adults grownup grownups", "child": "child children kid kids toddler toddlers", "teen": "teen"
    " teens teenager teenagers", "baby": "baby babies infant infants newborn newborns", "senior": "seniors"
    " elderly", "male": "man men boy boys male males", "female": "woman women girl girls female females",
    "pregnant": "pregnant", "beginner": "beginner beginners novice novices newbie newbies junior juniors",
    "intermediate": "intermediate", "expert": "expert experts advanced experienced professional professionals seasoned",
    "student": "student students", "dog": "dog dogs puppy puppies", "cat": "cat cats kitten kittens",
}  # fmt: skip
TIMES_OF_DAY = {"evening": "night", "tonight": "night", "overnight": "night", "nighttime": "night",
                "weekdays": "weekday", "weekend": "weekend", "weekends": "weekend", "weeknight": "weekday",
                "weeknights": "weekday"}  # fmt: skip
FREQUENCIES = {"annual": "yearly", "annually": "yearly", "nightly": "daily"}
SCOPE_KINDS: dict[str, dict[str, str]] = {  # kind -> word -> what it picks (its class)
    "order": {w: w for w in "first last next previous earliest latest initial final before after during until"
              " since".split()},
    "audience": {w: audience for audience, members in _AUDIENCES.items() for w in members.split()},
    "season": {w: w for w in "spring summer autumn winter".split()},
    "time": {w: TIMES_OF_DAY.get(w, w) for w in "morning afternoon evening night tonight overnight daytime nighttime"
             " weekday weekdays weekend weekends weeknight weeknights".split()},
    "frequency": {w: FREQUENCIES.get(w, w) for w in "hourly daily nightly weekly biweekly monthly quarterly yearly"
                  " annual annually".split()},
    # Quora's "some"/"any"/"all" are interchangeable: a swap among these is no new question.
    "amount": {w: w for w in "all every each any some none only both either neither whole entire single"
               " multiple several many few except excluding including ignoring besides alone per always never"
               " ever sometimes usually often rarely".split()},
}  # fmt: skip
SWAPPABLE_SCOPE_KINDS = ("order", "audience", "season", "time", "frequency", "superlative")
# Who it is for and when: a swap of these stands out among more rewording too ("for complete beginners"/
# "for experienced developers", "on weekdays"/"at the weekend", "monthly"/"annual interest");
# paraphrases reword them within their class ("kids"/"children", "annual"/"yearly").
WIDE_SCOPE_KINDS = ("audience", "season", "time", "frequency")
# Antonyms that paraphrases trade freely ("get in"/"get out of", "the best way"/"a good way", "with
# no"/"without"): a swap of two of these among other rewording does not count; a swap of one of these
# with another word does ("the first chapter"/"the whole book").
LOOSE_ANTONYMS = frozenset(
    "with without in out on off up down over under into from to good bad best worst new old more less most"
    " least all one some first front back left right top bottom big small large little long short".split()
)
# Superlatives ("fastest", "cheapest", "tallest") pick one of many ("best" and "most" are loose).
_SUPERLATIVE = re.compile(r"^[a-z]{3,}est$")
# Superlatives that ask the same ("the fastest way"/"the quickest way"): one class, no swap.
_SAME_SUPERLATIVES = ("fastest quickest speediest", "easiest simplest", "biggest largest", "smallest tiniest",
                      "cheapest lowest", "hardest toughest")  # fmt: skip
SUPERLATIVE_CLASS = {word: group.split()[0] for group in _SAME_SUPERLATIVES for word in group.split()}
NOT_SUPERLATIVES = frozenset(
    "interest request test contest protest harvest invest digest suggest guest forest honest modest manifest"
    " arrest chest crest nest pest rest west quest vest zest attest detest ingest infest conquest inquest"
    " priest earnest".split()
)

UNITS: dict[str, str] = {
    "km": "km", "kilometer": "km", "kilometre": "km", "mile": "mi", "mi": "mi", "meter": "m", "metre": "m",
    "cm": "cm", "centimeter": "cm", "centimetre": "cm", "mm": "mm", "millimeter": "mm", "inch": "in",
    "foot": "ft", "feet": "ft", "ft": "ft", "yard": "yd", "kg": "kg", "kilogram": "kg", "kilo": "kg",
    "gram": "g", "g": "g", "lb": "lb", "lbs": "lb", "pound": "lb", "ounce": "oz", "oz": "oz", "ml": "ml",
    "milliliter": "ml", "millilitre": "ml", "liter": "l", "litre": "l", "gallon": "gal", "cup": "cup",
    "tablespoon": "tbsp", "tbsp": "tbsp", "teaspoon": "tsp", "tsp": "tsp", "celsius": "C", "c": "C",
    "fahrenheit": "F", "f": "F", "kelvin": "K", "second": "s", "sec": "s", "minute": "min", "min": "min",
    "hour": "h", "hr": "h", "day": "d", "week": "wk", "month": "mo", "year": "yr", "decade": "decade",
    "byte": "B", "kb": "KB", "mb": "MB", "gb": "GB", "tb": "TB", "watt": "W", "kw": "kW", "kwh": "kWh",
    "amp": "A", "volt": "V", "mph": "mph", "kph": "kph", "percent": "%", "dollar": "$", "euro": "EUR",
    "usd": "$", "eur": "EUR", "gbp": "GBP", "yen": "JPY", "calorie": "kcal", "kcal": "kcal",
    "annual": "yr", "annually": "yr", "monthly": "mo", "weekly": "wk", "daily": "d", "hourly": "h",
    "yearly": "yr",
}  # fmt: skip
_UNIT_SYMBOLS = {"%": "%", "$": "$", "€": "EUR", "£": "GBP", "°c": "C", "°f": "F"}

# Products, languages, platforms and tools that users write in lower case as often as not.
KNOWN_NAMES = frozenset(
    "python java javascript js typescript ts rust golang go c c++ c# cpp csharp ruby php swift kotlin scala haskell"
    " perl lua r julia matlab bash zsh powershell sql nosql html css sass react vue angular svelte nextjs next.js"
    " node node.js nodejs deno django flask fastapi rails spring laravel express jquery numpy pandas matplotlib"
    " plotly seaborn scipy tensorflow pytorch keras sklearn excel word powerpoint outlook gmail docker kubernetes"
    " k8s terraform ansible git github gitlab bitbucket postgres postgresql mysql sqlite mongodb redis"
    " elasticsearch kafka rabbitmq nginx apache aws gcp azure s3 ec2 lambda linux ubuntu debian fedora centos"
    " arch windows mac macos osx ios android iphone ipad pixel samsung galaxy chromebook chrome firefox safari"
    " edge vscode vim emacs intellij pycharm slack zoom teams spotify netflix youtube amazon google apple"
    " microsoft facebook instagram whatsapp tiktok twitter paypal venmo visa mastercard amex shopify"
    " squarespace wordpress wix stripe openai chatgpt gpt claude llama".split()
)
# Names that are also everyday words ("the word cactus", "go to", "on the edge"): names only when
# capitalized inside a sentence, as any name is.
NAMES_WHEN_CAPITALIZED = frozenset(
    "word go c r edge arch teams zoom express spring lambda node galaxy pixel apple visa slack outlook".split()
)
_KNOWN_LOWERCASE_NAMES = KNOWN_NAMES - NAMES_WHEN_CAPITALIZED
# An acronym and the words it stands for ("GDPR"/"General Data Protection Regulation"); these small
# words may be skipped in the initials ("Department of Energy": DOE or DE).
_INITIALISM_SKIPPED = frozenset("of and the for on in to &".split())
MAX_INITIALS = 6
# Names written other ways that no acronym rule reads (two letters, a nickname, a product's old name).
NAME_ALIASES = (
    "us|usa|united states|america", "uk|united kingdom|britain|great britain", "mac|macos|osx|os x|mac os",
    "javascript|js", "typescript|ts", "postgres|postgresql", "los angeles|la",
    "san francisco|sf", "european union|eu", "united nations|un", "new zealand|nz",
    "vs code|vscode|visual studio code", "golang|go", "node|nodejs|node.js",
)  # fmt: skip
_ALIAS_GROUPS = tuple(tuple(tuple(name.split()) for name in group.split("|")) for group in NAME_ALIASES)
MIN_INITIALS = 3  # two letters spell too much by chance ("US": "Utah state", "IT": "is teaching")
MAX_ACRONYMS = 8  # a text in capitals is not a list of acronyms
_ACRONYM = re.compile(r"[A-Z]{2,}|(?:[A-Z]\.)+[A-Z]\.?")  # "GDPR", "N.A.S.A"
_DOTTED_INITIALS = re.compile(r"(?:[a-z]\.)+[a-z]\.?")  # "n.a.s.a", "u.s."

# Words with a direction: "convert X to Y", "X bigger than Y", "from X to Y", "X before Y". The same
# words on swapped sides of one ask the opposite ("Fahrenheit to Celsius"/"Celsius to Fahrenheit");
# "X and Y", "X or Y", "X vs Y" have no direction.
DIRECTIONAL_WORDS = frozenset("to from into onto than before after instead per".split())
DIRECTION_REACH = 2  # "bigger than": the subject is the second word before "than"
_CLAUSE_BREAK = re.compile(r"[.!?;:,](?:\s|$)|\n")
# An identifier with underscores ("to_iterable_dataset") is one token: its "to" is not a direction.
_CLAUSE_OR_WORD = re.compile(f"(?P<clause_break>{_CLAUSE_BREAK.pattern})|(?P<identifier>\\w*_\\w*)|{_WORD.pattern}")

STOPWORDS = frozenset(
    "a an the and or but if then so of to in on at by for with from as into onto about over after before"
    " is are was were be been being am do does did done doing have has had having i me my mine myself we us our"
    " you your yours he him his she her it its they them their this that these those there here what which who"
    " whom whose when where why how can could would should will shall may might must also just really very"
    " much many any some such than too own same other each every all both few more most s t ll re ve d m"
    " o y let lets get got way ways thing things something anything one ones it's i'm i've what's whats"
    " that's how's where's who's there's isn't don't"
    # conversational filler a near-repeat adds or drops
    " hi hey hello please pls plz thanks thank thx ok okay quick question quickly help tell explain know"
    " want need like wondering curious someone anyone best good exactly actually basically possible"
    " way using use used via able go going try trying between".split()
)

_STEM_SUFFIXES = ("ing", "ies", "ied", "es", "ed", "ly", "s")


def stem(word: str) -> str:
    """A light stemmer: enough to match "rises"/"rise", "tracked"/"track", "bananas"/"banana"."""
    return _stem_cached(word) if len(word) <= 30 else _stem(word)  # a 30-letter word is not worth keeping


@functools.lru_cache(maxsize=100_000)
def _stem_cached(word: str) -> str:
    return _stem(word)


def _stem(word: str) -> str:
    for suffix in _STEM_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= (2 if suffix in ("ies", "ied") else 3):
            base = word[: -len(suffix)]
            if suffix in ("ies", "ied"):
                return base + "y"
            return base
    return word


def _root(word: str) -> str:
    """Stem without a final "e", so "include", "includes" and "included" meet."""
    return stem(word).removesuffix("e")


def _antonym_stems(path: Path) -> frozenset[frozenset[str]]:
    """Root pairs of the handwritten antonyms and of the WordNet lexicon."""
    pairs = list(ANTONYMS)
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            first, second = line.split()
            pairs.append((first, second))
    return frozenset(frozenset((_root(x), _root(y))) for x, y in pairs if _root(x) != _root(y))


_ANTONYM_STEMS = _antonym_stems(ANTONYM_FILE)
_KNOWN_WORDS = frozenset(
    line for line in gzip.decompress(KNOWN_WORDS_FILE.read_bytes()).decode().splitlines() if not line.startswith("#")
)
_COMMON_WORDS = frozenset(line for line in COMMON_WORDS_FILE.read_text().splitlines() if not line.startswith("#"))
# British spellings and their American shapes, on stems too ("organis": "organiz"): one word spelled two ways.
# Each only where British spellings have it, not anywhere in a word: "four"/"for", "hour", "canoe"/"cane",
# "aloe"/"ale", "poet"/"pet", "mall"/"mal", "pall"/"pal" and "llama"/"lama" are two words.
_BRITISH_SPELLINGS = (
    (re.compile(r"(?:(?<=[aeiouy][a-z])|(?<=[aeiouy][a-z]{2})|(?<=[aeiouy][a-z]{3}))our"), "or"),  # colour, armour
    (re.compile(r"(?<=[a-z]{2})tre(?=s?$|d$)"), "ter"),  # centre, metres
    (re.compile(r"(?<=[a-z]{3})is(?=e|ing|ation|$)"), "iz"),  # organise, organis(ing), realisation
    (re.compile(r"(?<=[a-z]{3})ys(?=e|ing|$)"), "yz"),  # analyse, paralys(ed)
    (re.compile(r"(?<=[a-z]{3})ogue(?=s?$)"), "og"),  # catalogue, dialogues
    (re.compile(r"tyre"), "tire"),
    (re.compile(r"grey"), "gray"),
    (re.compile(r"[ao]e(?=[a-z]{2}|a$)"), "e"),  # anaemia, foetus, oestrogen, diarrhoea
    (re.compile(r"(?<=[a-z]{3})ll"), "l"),  # travell(ed), enroll/enrol, fulfill/fulfil
)
_INFLECTIONS = (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"), ("ly", ""))


def _known_word(word: str, words: frozenset[str] = _KNOWN_WORDS) -> bool:
    """A word of the list, or one of its plurals, past forms or adverbs ("bananas", "baked")."""
    return word in words or any(
        word.endswith(suffix) and word[: len(word) - len(suffix)] + base in words for suffix, base in _INFLECTIONS
    )


def _misspelling(typed: str, meant: str) -> bool:
    """`typed` misspells `meant`: an everyday word ("freeze", "receive") typed as no word at all ("freez",
    "recieve"). Two words ("desert"/"dessert"), a rarer word ("methanol"/"methanal": a chemist's words
    the lists may miss) or two unknown ones ("strcpy"/"strncpy") are left to the model."""
    return _known_word(meant, _COMMON_WORDS) and not _known_word(typed) and is_typo(typed, meant)


def _partners(pairs: Iterable[frozenset[str]]) -> dict[str, frozenset[str]]:
    """Each word of the pairs, with the words it is paired with."""
    found: dict[str, set[str]] = {}
    for pair in pairs:
        for word in pair:
            found.setdefault(word, set()).update(pair - {word})
    return {word: frozenset(others) for word, others in found.items()}


_ANTONYM_PARTNERS = _partners(_ANTONYM_KEYS)
_ROOT_PARTNERS = _partners(_ANTONYM_STEMS)
_HANDWRITTEN_ROOT_PARTNERS = _partners(frozenset((_root(x), _root(y))) for x, y in ANTONYMS if _root(x) != _root(y))
_NONE: frozenset[str] = frozenset()


def scope_of(tokens: Iterable[str]) -> set[tuple[str, str]]:
    """The (kind, class) of each scope word in a text: ("audience", "child") for "kids"."""
    found = set()
    for word in tokens:
        for kind, members in SCOPE_KINDS.items():
            if word in members:
                found.add((kind, members[word]))
        if _SUPERLATIVE.match(word) and word not in NOT_SUPERLATIVES:
            found.add(("superlative", SUPERLATIVE_CLASS.get(word, word)))
    return found


def _normalize(text: str) -> str:
    if not text.isascii():  # "résumé": "resume", "naïve": "naive"
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
        text = text.translate(_LATIN_LETTERS)
    return _THOUSANDS.sub("", text.translate(_APOSTROPHE)).replace("%", " percent ").replace("cannot", "cant")


def _word_token(raw: str) -> str:
    """A word as the signals compare it: lower case, no possessive "'s" ("the EU's": "eu") nor other
    apostrophe ("don't": "dont"), initials without their dots ("N.A.S.A.")."""
    word = raw.removesuffix("'s").lower().replace("'", "")
    return word.replace(".", "") if _DOTTED_INITIALS.fullmatch(word) else word


def words(text: str) -> list[str]:
    """Lower-case word tokens (numbers kept as tokens; apostrophes dropped: "don't" -> "dont"; a
    possessive's "'s" too: "the EU's" -> "eu")."""
    return [_word_token(w) for w in _WORD.findall(_normalize(text))]


# --- the signals ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Direction:
    """One directional word of a clause and the stemmed content words before and after it."""

    word: str
    before: frozenset[str]
    after: frozenset[str]


def _is_content(token: str) -> bool:
    return token not in STOPWORDS and token not in NEGATIONS and not token[0].isdigit() and token not in NUMBER_WORDS


def _clauses(normalized: str) -> list[list[str]]:
    """The word tokens of each clause of a normalized text, as `words` gives them."""
    clauses: list[list[str]] = [[]]
    for match in _CLAUSE_OR_WORD.finditer(normalized):
        if match.group("clause_break"):
            clauses.append([])
        else:
            clauses[-1].append(match.group(0).lower().replace("'", ""))
    return clauses


def directions(normalized: str, tokens: Iterable[str]) -> tuple[Direction, ...]:
    """The directional words of each clause of a normalized text (its tokens: `tokens`), with the
    nearest content words on either side (DIRECTION_REACH of them: a passive rewrite moves whole
    phrases across a "to" or "by")."""
    if DIRECTIONAL_WORDS.isdisjoint(tokens):
        return ()
    found = []
    for clause in _clauses(normalized):
        # Numbers count here: "is 7 bigger than 9" is not "is 9 bigger than 7".
        content = [
            (i, stem(t))
            for i, t in enumerate(clause)
            if (_is_content(t) or t[0].isdigit()) and t not in DIRECTIONAL_WORDS
        ]
        for i, token in enumerate(clause):
            if token in DIRECTIONAL_WORDS:
                before = [word for j, word in content if j < i][-DIRECTION_REACH:]
                after = [word for j, word in content if j > i][:DIRECTION_REACH]
                found.append(Direction(token, frozenset(before), frozenset(after)))
    return tuple(found)


def order_swapped(a: tuple[Direction, ...], b: tuple[Direction, ...]) -> bool:
    """A word moved from before a directional word to after it, and another the other way."""
    for x in a:
        for y in b:
            if x.word != y.word:
                continue
            moved_after = (x.before - x.after) & (y.after - y.before)
            moved_before = (x.after - x.before) & (y.before - y.after)
            if moved_after and moved_before:
                return True
    return False


@dataclass(frozen=True)
class TextFacts:
    """What the signals need from one text, extracted once."""

    tokens: tuple[str, ...]
    token_set: frozenset[str]
    stems: frozenset[str]
    numbers: frozenset[str]
    negations: int
    entities: frozenset[str]
    units: frozenset[str]
    content: frozenset[str]  # stemmed content words
    directions: tuple[Direction, ...]  # each directional word, with the content words on its sides
    code: CodeSymbols
    names: tuple[frozenset[str], ...] = ()  # stemmed words of each name of several words ("Red Bull")
    excluded: frozenset[str] = frozenset()  # roots of what the text leaves out ("without root": root)
    restricted: bool = False  # it rules a thing out: "without eggs", "except Alaska", "gluten-free"
    lacking: frozenset[str] = frozenset()  # roots of what it says "no" to ("with no experience": experi)
    acronyms: frozenset[str] = frozenset()  # words in capitals or dotted initials ("GDPR", "N.A.S.A.")
    capitalized: frozenset[str] = frozenset()  # tokens written with a capital ("General", "Data")
    marks: str = ""  # its signs and operators, in order ("-" before or after a number, "+", "=", "$")
    unread: tuple[str, ...] = ()  # its words no token reads (Cyrillic, Chinese), in order: compared whole
    symbols: str = ""  # its symbols no token reads, in order: emoji, "∫", "¥" ("€", "£", "°" are read as units)


MAX_CACHED_TEXT = 2000  # histories are compared from their last 1,500 characters; prompts are mostly short


def facts(text: str) -> TextFacts:
    """What the signals read from a text. A stored prompt or history is read again on every lookup
    near it, so short texts are kept (4,096 of at most 2,000 characters: a few tens of MB at worst)."""
    return _cached_facts(text) if len(text) <= MAX_CACHED_TEXT else _facts(text)


@functools.lru_cache(maxsize=4096)
def _cached_facts(text: str) -> TextFacts:
    return _facts(text)


# "one" counts only the thing it comes before ("just one window"); as a pronoun ("how can one", "a new
# one", "one of", "one by one"), after these ("no one", "at one time", "into one") or in "one line at a
# time" it counts nothing.
_ONE_AFTER = frozenset(
    "no the which this that any every each some into at can could should must may might will would does do did"
    " is".split()
)


def _unit(token: str) -> str | None:
    """The unit a word names, singular or plural, American or British ("centimetres": "cm")."""
    for word in (token, stem(token), token.removesuffix("s"), token.removesuffix("es")):
        if word in UNITS:
            return UNITS[word]
    return None


def _first_thing(tokens: tuple[str, ...], i: int) -> str | None:
    """The thing the word at i leaves out: the first content word of the next few ("without needing
    to download": download)."""
    following = tokens[i + 1 : i + 1 + EXCLUSION_REACH]
    return next((t for t in following if _is_content(t) and t not in _EXCLUDING_OR_HELPER), None)


def _one_as_pronoun(tokens: tuple[str, ...], i: int) -> bool:
    """Whether the "one" at i is a pronoun or an idiom, not the number."""
    if tokens[i] != "one":
        return False
    after = tokens[i + 1] if i + 1 < len(tokens) else ""
    return (
        (i > 0 and tokens[i - 1] in _ONE_AFTER)
        or not after
        or not _is_content(after)
        or after == "time"
        or tokens[i + 2 : i + 5] == ("at", "a", "time")  # "one line at a time": each in turn
    )


def _facts(text: str) -> TextFacts:
    normalized = _normalize(text)
    raw_words = _WORD.findall(normalized)
    tokens = tuple(_word_token(raw) for raw in raw_words)
    numbers = {m.group(0).lower().replace(" ", "") for m in _NUMBER.finditer(normalized)}
    numbers |= {NUMBER_WORDS[t] for i, t in enumerate(tokens) if t in NUMBER_WORDS and not _one_as_pronoun(tokens, i)}
    numbers |= {t for t in tokens if len(t) > MAX_TYPO_LENGTH}  # a DNA string, a hash, a path: an ID
    sentence_starts = {m.group(1) for m in _SENTENCE_START.finditer(normalized)}
    for raw in raw_words:
        low = raw.lower()
        if low in DATE_WORDS and (low not in AMBIGUOUS_DATE_WORDS or raw[0].isupper()):
            numbers.add(low[:3])
    entities = {
        _word_token(raw)
        for raw in raw_words
        if raw[0].isupper() and raw not in sentence_starts and raw.lower() not in STOPWORDS and raw != "I"
    }
    entities |= {t for t in tokens if t in _KNOWN_LOWERCASE_NAMES}
    entities -= DATE_WORDS
    units = {unit for t in tokens if (unit := _unit(t)) is not None}
    lowered = normalized.lower()
    units |= {unit for symbol, unit in _UNIT_SYMBOLS.items() if symbol in lowered}
    units -= {"C", "F"} if not re.search(r"°|\bdegrees?\b|celsius|fahrenheit", lowered) else set()
    negations = sum(
        1
        for i, t in enumerate(tokens)
        if (t in NEGATIONS or (t.endswith("nt") and t[:-2] + "nt" in NEGATIONS))
        and not (t == "no" and tokens[max(i - 2, 0) : i] == ("yes", "or"))  # "yes or no" negates nothing
    )
    left_out = [(free, less) for free, less in _LEFT_OUT.findall(lowered)]
    excluded = {_root(word) for match in left_out for word in match if word and _is_content(word)}
    restricted = any(free and _is_content(free) for free, _ in left_out)
    lacking: set[str] = set()
    for i, token in enumerate(tokens):
        if token == "no" and (thing := _first_thing(tokens, i)) is not None:
            lacking.add(_root(thing))
        # Python's try/except leaves nothing out ("try except in Python"/"handle exceptions in Python").
        if token in EXCLUSION_WORDS and not (token == "except" and "try" in tokens):
            thing = _first_thing(tokens, i)
            if thing is not None:
                excluded.add(_root(thing))
                restricted |= token in RULING_OUT and thing not in LOSING
    content = frozenset(stem(t) for t in tokens if _is_content(t))
    return TextFacts(
        tokens=tokens,
        token_set=frozenset(tokens),
        stems=frozenset(stem(t) for t in tokens),
        numbers=frozenset(numbers),
        negations=negations,
        entities=frozenset(entities),
        units=frozenset(units),
        content=content,
        names=_names(tokens, entities),
        directions=directions(normalized, tokens),
        code=code_symbols(text),
        excluded=frozenset(excluded),
        restricted=restricted,
        lacking=frozenset(lacking),
        marks="".join(m.strip() for m in _MARKS.findall(normalized)),
        unread=() if normalized.isascii() else tuple(w for w in _LETTER_RUN.findall(normalized) if not w.isascii()),
        symbols=_unread_symbols(normalized),
        capitalized=frozenset(_word_token(raw) for raw in raw_words if raw[0].isupper()),
        acronyms=frozenset(
            _word_token(word)
            for raw in raw_words
            if _ACRONYM.fullmatch(word := raw.removesuffix("'s"))
            and MIN_INITIALS <= len(word.replace(".", "")) <= MAX_INITIALS
        ),
    )


_READ_SYMBOLS = frozenset("€£°")  # units (_UNIT_SYMBOLS) and marks (_MARKS)


def _unread_symbols(normalized: str) -> str:
    """The symbols of a text no token reads (emoji, "∫", "¥", "→"), in order."""
    if normalized.isascii():
        return ""
    return "".join(
        ch
        for ch in normalized
        if not ch.isascii() and ch not in _READ_SYMBOLS and unicodedata.category(ch).startswith("S")
    )


def _names(tokens: tuple[str, ...], entities: set[str]) -> tuple[frozenset[str], ...]:
    """Runs of adjacent name words ("Red Bull", "Coca-Cola", "American Express"), as stems."""
    runs: list[frozenset[str]] = []
    run: list[str] = []
    for token in (*tokens, ""):
        if token in entities:
            run.append(stem(token))
            continue
        if len(run) > 1:
            runs.append(frozenset(run))
        run = []
    return tuple(runs)


def _count_names_once(differing: set[str], names: tuple[frozenset[str], ...]) -> int:
    """How many words differ when a name of several words counts as one."""
    count = len(differing)
    for name in names:
        count -= max(len(name & differing) - 1, 0)
    return count


def _damerau_at_most(a: str, b: str, limit: int) -> bool:
    """Whether the optimal-string-alignment distance of a and b is at most `limit` (small words only)."""
    if abs(len(a) - len(b)) > limit:
        return False
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return False
        previous2, previous = previous, current
    return previous[-1] <= limit


def is_typo(a: str, b: str) -> bool:
    """A misspelling or spelling variant ("instal"/"install", "tyre"/"tire"), not another word. A token
    longer than MAX_TYPO_LENGTH (a DNA string, a URL path) is no word to misspell: compared exactly,
    and the alignment stays cheap."""
    if a[0] != b[0] or min(len(a), len(b)) < 4 or max(len(a), len(b)) > MAX_TYPO_LENGTH:
        return False
    if _damerau_at_most(a, b, 1):
        return True
    return min(len(a), len(b)) >= 5 and abs(len(a) - len(b)) <= 1 and a[:2] == b[:2] and _damerau_at_most(a, b, 2)


def _negated_form(word: str, others: Iterable[str]) -> bool:
    """`word` is a prefix negation ("unsafe", "non-toxic", "immutable") of one of `others`."""
    for prefix in NEGATING_PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 3:
            rest = word[len(prefix) :].lstrip("-")
            if rest in others:
                return True
    return False


def _roots(word: str) -> set[str]:
    """The word's root, and its adjective's when it is a comparative or superlative ("colder": "cold")."""
    roots = {_root(word)}
    for suffix in ("iest", "ier", "est", "er"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if suffix.startswith("i"):  # "earlier": "early"
                forms = {base + "y"}
            else:  # "colder": "cold", "later": "late", "hotter": "hot"
                forms = {base, base + "e"} | ({base[:-1]} if base[-1] == base[-2] else set())
            roots |= {_root(form) for form in forms}
            break
    return roots


def _antonym_swap(only_a: set[str], only_b: set[str], lexicon: bool = True) -> bool:
    """One side has a word the other has an antonym of (linear in the words: histories are long);
    `lexicon` False: of the handwritten list only, not WordNet's."""
    if not only_a or not only_b:
        return False
    if any(_ANTONYM_PARTNERS.get(x, _NONE) & only_b for x in only_a):
        return True
    partners = _ROOT_PARTNERS if lexicon else _HANDWRITTEN_ROOT_PARTNERS
    roots_b = {r for y in only_b for r in _roots(y)}
    return any(partners.get(rx, _NONE) & roots_b for x in only_a for rx in _roots(x))


def _prefix_opposites(only_a: set[str], only_b: set[str]) -> bool:
    """One side has a word the other has with the opposite prefix ("overactive"/"underactive")."""
    for x in only_a:
        for first, second in OPPOSITE_PREFIXES:
            for mine, theirs in ((first, second), (second, first)):
                if x.startswith(mine) and len(x) - len(mine) >= MIN_PREFIXED_STEM and theirs + x[len(mine) :] in only_b:
                    return True
    return False


def negation_differs(q: TextFacts, c: TextFacts) -> bool:
    """One text negates and the other does not, nor says it with a negating prefix ("isn't used"/"unused")
    nor leaves out what the other says "no" to ("with no equipment"/"without equipment", "no-code"/"without code")."""
    if (q.negations > 0) == (c.negations > 0):
        return False
    plain, negating = (q, c) if c.negations else (c, q)
    if negating.negations == negating.tokens.count("no") and negating.lacking and negating.lacking <= plain.excluded:
        return False  # "a job with no experience"/"a job without experience"
    # Only a word the plain text alone has: "display" in both does not explain a "doesn't play".
    return not any(_negated_form(word, negating.token_set) for word in plain.token_set - negating.token_set)


def exclusion_mismatch(q: TextFacts, c: TextFacts) -> bool:
    """One text leaves out what the other names without leaving it out ("without root"/"as root"), or
    rules a thing out of a question the other asks whole ("pancakes without eggs"/"pancakes")."""
    return (
        _names_plainly(c, q.excluded - c.excluded - c.lacking)
        or _names_plainly(q, c.excluded - q.excluded - q.lacking)
        or _restricted_one_side(q, c)
        or _restricted_one_side(c, q)
    )


def _restricted_one_side(text: TextFacts, other: TextFacts) -> bool:
    """The text rules a thing out; the other leaves nothing out (but for saying "no" to the same:
    "pancakes with no eggs"), negates nothing and turns nothing around ("recipes that don't use
    eggs", "how to avoid eggs" are the other rules' business)."""
    return (
        text.restricted
        and not other.excluded
        and bool(text.excluded - other.lacking)
        and other.negations == other.tokens.count("no")
        and REVERSING_VERBS.isdisjoint(other.token_set)
    )


def _names_plainly(text: TextFacts, things: frozenset[str]) -> bool:
    """The text names one of `things` (roots), and not as "X free" nor after a word that keeps it away."""
    if not things or not KEEP_AWAY.isdisjoint(text.token_set):
        return False
    tokens = text.tokens
    return any(_root(token) in things and tokens[i + 1 : i + 2] != ("free",) for i, token in enumerate(tokens))


def added_phrase(short: tuple[str, ...], long: tuple[str, ...], added: set[str]) -> bool:
    """The longer text is the shorter plus a qualifying phrase, and says nothing the shorter does not
    otherwise (`added`: its content words the shorter lacks). Put in with nothing else changed, two
    content words make a phrase ("the largest file in a directory" + "including all subdirectories",
    "the highest-grossing film" + "adjusted for inflation"); among reworded text, a run of three
    ("remove duplicates from a Python list" + "while keeping the original order")."""
    if len(short) < len(long):
        head = 0
        while head < len(short) and short[head] == long[head]:
            head += 1
        tail = 0
        while tail < len(short) - head and short[-1 - tail] == long[-1 - tail]:
            tail += 1
        if head + tail == len(short):
            inserted = long[head : len(long) - tail]
            return sum(1 for t in inserted if _is_content(t) and t not in PHRASE_FILLER) >= MIN_INSERTED_WORDS
    run = longest = 0
    for token in long:
        if _is_content(token) and token not in PHRASE_FILLER:
            run = run + 1 if stem(token) in added else 0
            longest = max(longest, run)
    return longest >= MIN_ADDED_RUN


# "What's" reads "what" (the possessive's rule); "Whats", typed without the apostrophe, is the same.
_UNCONTRACTED = {w + "s": w for w in "what that there here who where how it let".split()}


def _question_words(tokens: tuple[str, ...]) -> list[str]:
    """The tokens but greetings before the question, thanks after it and "please" anywhere."""
    words = [_UNCONTRACTED.get(t, t) for t in tokens if t not in PLEASE]
    start, end = 0, len(words)
    while start < end and words[start] in GREETINGS:
        start += 1
    while end > start and (words[end - 1] in THANKS or words[end - 2 : end] == ["thank", "you"]):
        end -= 1
    return words[start:end]


def respelled(q: TextFacts, c: TextFacts) -> bool:
    """The same question typed again: word for word, in order, save case, punctuation, greetings and
    misspellings ("Whats the best way to freez bananas" / "What's the best way to freeze bananas?").
    A name is compared exactly ("Iran"/"Iraq", "Chile"/"China"); a misspelling is one edit or two from
    an everyday word and no known word itself (`_misspelling`)."""
    # words the tokens miss ("борщ"/"плов"), signs ("-5"/"5"), symbols ("🍆"/"🍑")
    if q.unread != c.unread or q.marks != c.marks or q.symbols != c.symbols:
        return False
    mine, theirs = _question_words(q.tokens), _question_words(c.tokens)
    if not mine or len(mine) != len(theirs):  # "hi"/"thanks": no question to be the same
        return False
    names = q.entities | c.entities
    return all(
        a == b
        or (a not in names and b not in names and not a[0].isdigit() and (_misspelling(a, b) or _misspelling(b, a)))
        for a, b in zip(mine, theirs, strict=True)
    )


def _same_family(a: str, b: str) -> bool:
    """ "differ"/"difference", "dehydrat"/"dehydration": a long shared beginning."""
    shorter = min(len(a), len(b))
    if shorter > MAX_TYPO_LENGTH:
        return False
    prefix = 0
    while prefix < shorter and a[prefix] == b[prefix]:
        prefix += 1
    return prefix >= 5 and prefix >= 0.75 * shorter


def _same_unit(a: str, b: str) -> bool:
    """ "km"/"kilometer", "lbs"/"pound": one unit, written two ways (a unit swap is unit_mismatch's)."""
    unit = UNITS.get(a)
    return unit is not None and unit == UNITS.get(b)


def _unmatched(
    mine: frozenset[str], theirs: frozenset[str], my_tokens: tuple[str, ...], their_tokens: tuple[str, ...]
) -> set[str]:
    """My content words the other text lacks: not the same stem, not a typo of one, not a split compound,
    not the same unit spelled otherwise."""
    joined = {their_tokens[i] + their_tokens[i + 1] for i in range(len(their_tokens) - 1)}
    their_set = set(their_tokens)
    split_compound = set()
    for i in range(len(my_tokens) - 1):
        if my_tokens[i] + my_tokens[i + 1] in their_set:
            split_compound |= {stem(my_tokens[i]), stem(my_tokens[i + 1])}
    left = set()
    for word in mine - theirs:
        if word in joined or word in split_compound:
            continue
        if any(
            (is_typo(word, other) and not _two_words(word, other, my_tokens, their_tokens))
            or _same_family(word, other)
            or _same_unit(word, other)
            for other in theirs - mine
        ):
            continue
        left.add(word)
    return left


def _two_words(mine: str, theirs: str, my_tokens: tuple[str, ...], their_tokens: tuple[str, ...]) -> bool:
    """Two stems a typo apart are two words when both are known words and not one word's British and
    American spellings: "nitrate"/"nitrite", "lactase"/"lactose"; not "colour"/"color"."""
    mine_known = any(_known_word(t) for t in my_tokens if stem(t) == mine)
    theirs_known = any(_known_word(t) for t in their_tokens if stem(t) == theirs)
    return mine_known and theirs_known and _american(mine) != _american(theirs)


def _american(word: str) -> str:
    """The American spelling's shape of a British one ("colour": "color", "centre": "center")."""
    for british, american in _BRITISH_SPELLINGS:
        word = british.sub(american, word)
    return word


def _missing(mine: TextFacts, other: TextFacts, abbreviated: set[str]) -> set[str]:
    """My entities the other text does not mention: nor misspell, nor write as one word or two
    ("Wi-Fi"/"WiFi"), nor spell out or abbreviate (`abbreviated`: my words an acronym accounts for)."""
    missing = {
        e
        for e in mine.entities
        if e not in other.token_set
        and stem(e) not in other.stems
        and not any(is_typo(e, t) for t in other.token_set if t[:1] == e[:1])
    }
    if not missing:
        return missing
    mine_pairs = zip(mine.tokens, mine.tokens[1:], strict=False)
    other_joined = {x + y for x, y in zip(other.tokens, other.tokens[1:], strict=False)}
    missing -= {part for x, y in mine_pairs if x + y in other.token_set for part in (x, y)}
    return missing - other_joined - abbreviated


def _aliases_in_both(mine: tuple[str, ...], theirs: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """The words of each text that name what the other names another way ("the United States"/"the
    US", "macOS"/"a Mac"): (mine, theirs)."""
    mine_found: set[str] = set()
    theirs_found: set[str] = set()
    for group in _ALIAS_GROUPS:
        in_mine = [name for name in group if _holds(mine, name)]
        if in_mine and (in_theirs := [name for name in group if _holds(theirs, name)]):
            mine_found.update(word for name in in_mine for word in name)
            theirs_found.update(word for name in in_theirs for word in name)
    return mine_found, theirs_found


def _holds(tokens: tuple[str, ...], name: tuple[str, ...]) -> bool:
    """Whether the name's words stand in the tokens, in a row (a scan only from its first word)."""
    first = name[0]
    if first not in tokens:
        return False
    return len(name) == 1 or any(tokens[i : i + len(name)] == name for i, token in enumerate(tokens) if token == first)


def _spelled_out(text: TextFacts, acronyms: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """The acronyms whose letters are the initials of a run of the text's capitalized words ("Data
    Protection"; small words such as "of" may stand between them), with that run's words."""
    wanted = set(acronyms)
    found: dict[str, tuple[str, ...]] = {}
    if not wanted or len(wanted) > MAX_ACRONYMS:
        return found
    tokens = text.tokens
    for start, first in enumerate(tokens):
        if not wanted:
            break
        if first not in text.capitalized:
            continue
        initials, every_initial, run = "", "", []  # "Department of Energy": "de" and "doe"
        for token in tokens[start : start + 2 * MAX_INITIALS]:
            small = token in _INITIALISM_SKIPPED
            if not small and token not in text.capitalized:
                break
            run.append(token)
            every_initial += token[0]
            if not small:
                initials += token[0]
            for spelled in {initials, every_initial} & wanted:
                found[spelled] = tuple(run)
                wanted.discard(spelled)
            if len(initials) >= MAX_INITIALS:
                break
    return found


@dataclass(frozen=True)
class PairFeatures:
    """Every signal of one (query, candidate) pair; `vector` is what the calibrated model weighs."""

    similarity: float
    unread_text: bool  # words the signals cannot read (Cyrillic, Chinese) or symbols (emoji) that differ
    number_mismatch: bool  # both mention numbers, dates or IDs and they differ
    number_one_side: bool  # only one of them does
    negation_mismatch: bool
    polarity_mismatch: bool  # an antonym swap or a prefix negation ("safe"/"unsafe")
    scope_mismatch: bool  # a quantifier, order word, audience or superlative on one side only
    scope_swap: bool  # one on each side ("first"/"last", "adults"/"children", "fastest"/"cheapest")
    wide_scope_swap: bool  # an audience, season, time or frequency on each side ("beginners"/"experienced")
    entity_mismatch: bool
    unit_mismatch: bool
    symbol_mismatch: bool  # one holds code, and their operators, brackets, code quotes or number order differ
    order_swap: bool  # the same words on swapped sides of a directional word ("F to C"/"C to F")
    exclusion_mismatch: bool  # one leaves out what the other names ("without root"/"as root")
    strong_polarity: bool  # an antonym swap of words paraphrases do not trade ("cold"/"hot", "open"/"close")
    reversal_one_side: bool  # one side only has a verb that turns the question around ("fix", "stop")
    added_phrase: bool  # one is the other plus a qualifying phrase ("... adjusted for inflation")
    respelled: bool  # the same words in the same order, some misspelled ("freez"), greetings aside
    only_query: int  # content words the query has and the candidate lacks (a name of several words: one)
    only_candidate: int
    content_jaccard: float
    weighted_difference: float  # share of the content words' weight (IDF) that differs
    max_difference_weight: float  # IDF of the rarest differing word, scaled to 0..1
    differing: tuple[str, ...] = field(default=())

    def vector(self) -> list[float]:
        diff = self.only_query + self.only_candidate
        swap = 1.0 if self.only_query >= 1 and self.only_candidate >= 1 and diff <= 3 else 0.0
        added = 1.0 if (self.only_query == 0) != (self.only_candidate == 0) else 0.0
        return [
            self.similarity,
            float(self.number_mismatch),
            float(self.number_one_side),
            float(self.negation_mismatch),
            float(self.polarity_mismatch),
            float(self.scope_mismatch),
            float(self.scope_swap),
            float(self.entity_mismatch),
            float(self.unit_mismatch),
            swap,
            added,
            self.weighted_difference,
            self.max_difference_weight,
        ]


FEATURE_NAMES = (
    "similarity",
    "number_mismatch",
    "number_one_side",
    "negation_mismatch",
    "polarity_mismatch",
    "scope_mismatch",
    "scope_swap",
    "entity_mismatch",
    "unit_mismatch",
    "one_for_one_swap",
    "words_added",
    "weighted_difference",
    "max_difference_weight",
)
# The refusal reason each feature stands for, when it is what pulled the probability down.
FEATURE_REASONS = {
    "similarity": "low_similarity",
    "number_mismatch": "number_mismatch",
    "number_one_side": "number_mismatch",
    "negation_mismatch": "negation_mismatch",
    "polarity_mismatch": "polarity_mismatch",
    "scope_mismatch": "scope_mismatch",
    "scope_swap": "scope_mismatch",
    "entity_mismatch": "entity_mismatch",
    "unit_mismatch": "unit_mismatch",
}
DEFAULT_IDF = 8.0  # a word unseen in the training corpus: rare, so it matters
MAX_IDF = 10.0


def _both_differ(mine: tuple[str, ...] | str, theirs: tuple[str, ...] | str) -> bool:
    return bool(mine) and bool(theirs) and mine != theirs


def must_agree(q: TextFacts, c: TextFacts) -> dict[str, bool]:
    """The signals of what must agree whatever else two texts share: numbers, negation, code."""
    return {
        # The signals read Latin letters only: words in another script, emoji and other symbols that both
        # texts hold must be the same, in the same order ("Как приготовить борщ?"/"... плов?", "What does
        # the 🍆/🍑 emoji mean?"); on one side only they are read around ("₹2000"/"2000 rupees", "🤗 Datasets").
        "unread_text": _both_differ(q.unread, c.unread) or _both_differ(q.symbols, c.symbols),
        "number_mismatch": bool(q.numbers) and bool(c.numbers) and q.numbers != c.numbers,
        "number_one_side": bool(q.numbers) != bool(c.numbers),
        "negation_mismatch": negation_differs(q, c),
        "exclusion_mismatch": exclusion_mismatch(q, c),
        "symbol_mismatch": symbol_mismatch(q.code, c.code),
    }


def pair_features(
    query: str, candidate: str, similarity: float, idf: Mapping[str, float] | None = None
) -> PairFeatures:
    """All signals of a pair; `idf` (stemmed word -> inverse document frequency) weighs the differing words."""
    q, c = facts(query), facts(candidate)
    only_q = _unmatched(q.content, c.content, q.tokens, c.tokens)
    only_c = _unmatched(c.content, q.content, c.tokens, q.tokens)
    q_diff_tokens = set(q.tokens) - set(c.tokens)
    c_diff_tokens = set(c.tokens) - set(q.tokens)
    if q.lacking & c.excluded or c.lacking & q.excluded:  # "with no X"/"without X": no with/without swap
        q_diff_tokens -= {"with", "without"}
        c_diff_tokens -= {"with", "without"}
    # Most pairs hold no antonym at all: the loose ones are set aside only when there is one.
    antonym_swap = _antonym_swap(q_diff_tokens, c_diff_tokens)
    strong_polarity = (
        antonym_swap
        and (
            _antonym_swap(q_diff_tokens - LOOSE_ANTONYMS, c_diff_tokens - LOOSE_ANTONYMS)
            # one loose word against a handwritten partner: "first"/"whole", not WordNet's "small"/"spacious"
            or _antonym_swap(q_diff_tokens - LOOSE_ANTONYMS, c_diff_tokens, lexicon=False)
            or _antonym_swap(q_diff_tokens, c_diff_tokens - LOOSE_ANTONYMS, lexicon=False)
        )
    ) or _prefix_opposites(q_diff_tokens, c_diff_tokens)
    polarity = (
        strong_polarity
        or antonym_swap
        # "unused"/"used" is a polarity swap; "unused"/"isn't used" is the same (the negation's rule).
        or (
            (q.negations > 0) == (c.negations > 0)
            and (
                any(_negated_form(w, c.token_set) for w in q_diff_tokens)
                or any(_negated_form(w, q.token_set) for w in c_diff_tokens)
            )
        )
    )
    q_scope_all, c_scope_all = scope_of(q.tokens), scope_of(c.tokens)
    q_scope = {kind for kind, _ in q_scope_all - c_scope_all}
    c_scope = {kind for kind, _ in c_scope_all - q_scope_all}
    # An acronym one text spells out ("GDPR"/"General Data Protection Regulation") is no other name;
    # the words still differ for the model (one acronym has many expansions: WHO, World Heart...).
    q_spells, c_spells = _spelled_out(q, c.acronyms), _spelled_out(c, q.acronyms)
    q_aliased, c_aliased = _aliases_in_both(q.tokens, c.tokens)
    q_abbreviated = {word for run in q_spells.values() for word in run} | set(c_spells) | q_aliased
    c_abbreviated = {word for run in c_spells.values() for word in run} | set(q_spells) | c_aliased
    entity_mismatch = bool(_missing(q, c, q_abbreviated)) or bool(_missing(c, q, c_abbreviated))
    weights = idf or {}

    def weight(word: str) -> float:
        return min(weights.get(word, DEFAULT_IDF), MAX_IDF)

    total = sum(weight(w) for w in q.content | c.content)
    differing = only_q | only_c
    union = len(q.content | c.content)
    return PairFeatures(
        similarity=similarity,
        **must_agree(q, c),
        polarity_mismatch=polarity,
        scope_mismatch=bool(q_scope) != bool(c_scope),
        scope_swap=any(kind in q_scope and kind in c_scope for kind in SWAPPABLE_SCOPE_KINDS),
        wide_scope_swap=any(kind in q_scope and kind in c_scope for kind in WIDE_SCOPE_KINDS),
        entity_mismatch=entity_mismatch,
        unit_mismatch=bool(q.units) and bool(c.units) and q.units != c.units,
        order_swap=order_swapped(q.directions, c.directions),
        strong_polarity=strong_polarity,
        reversal_one_side=REVERSING_VERBS.isdisjoint(q.token_set) != REVERSING_VERBS.isdisjoint(c.token_set),
        added_phrase=bool(only_q) != bool(only_c)
        and (added_phrase(c.tokens, q.tokens, only_q) if only_q else added_phrase(q.tokens, c.tokens, only_c)),
        respelled=respelled(q, c),
        only_query=_count_names_once(only_q, q.names),
        only_candidate=_count_names_once(only_c, c.names),
        content_jaccard=len(q.content & c.content) / union if union else 1.0,
        weighted_difference=sum(weight(w) for w in differing) / total if total else 0.0,
        max_difference_weight=max((weight(w) for w in differing), default=0.0) / MAX_IDF,
        differing=tuple(sorted(differing)),
    )
