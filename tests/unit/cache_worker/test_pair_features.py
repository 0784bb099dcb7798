"""The surface numbers the verifier's decision reads: a misspelt word is told from another word."""

from __future__ import annotations

import pytest

from services.cache_worker.verifier.pair_features import FEATURE_NAMES, features


def named(stored: str, asked: str, probability: float = 0.5, similarity: float = 0.9) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, features(stored, asked, probability, similarity), strict=True))


def test_a_misspelt_word_is_a_misspelling_and_leaves_nothing_unexplained() -> None:
    f = named("How do I cancel my subscription?", "how do i cancel my subscrption")
    assert f["misspelled_share"] > 0 and f["unexplained_share"] == 0


def test_another_word_in_its_place_is_unexplained() -> None:
    f = named("Can I fly to Paris with Ryanair?", "Can I fly to Vienna with Ryanair?")
    assert f["misspelled_share"] == 0 and f["unexplained_share"] == pytest.approx(2 / 7)


def test_an_opposite_is_not_a_misspelling() -> None:
    f = named("How do I turn on two-factor authentication?", "How do I turn off two-factor authentication?")
    assert f["misspelled_share"] == 0 and f["unexplained_share"] > 0


def test_a_split_word_reads_the_same_without_spaces() -> None:
    f = named("Can I bring a powerbank on the plane?", "can i bring a power bank on the plane")
    assert f["joined_ratio"] == 1.0 and f["character_ratio"] < 1.0


def test_the_classifier_score_enters_as_a_bounded_logit_and_the_cosine_as_it_is() -> None:
    assert named("a b", "a c", probability=0.5)["classifier_logit"] == 0.0
    assert named("a b", "a c", probability=1.0)["classifier_logit"] == pytest.approx(9.21, abs=0.01)
    assert named("a b", "a c", similarity=0.73)["similarity"] == 0.73


def test_a_long_rewording_is_not_paired_word_by_word() -> None:
    stored = " ".join(f"alpha{i}" for i in range(20))
    asked = " ".join(f"alpha{i}x" for i in range(20))
    f = named(stored, asked)
    assert f["misspelled_share"] == 0 and f["unexplained_share"] == 2.0


def test_two_roles_swapped_are_moved_words() -> None:
    f = named("Can a landlord evict a tenant?", "Can a tenant evict a landlord?")
    assert f["moved_share"] > 0 and f["misspelled_share"] == 0
    assert named("How do I reset my router?", "how do i reset my router pls")["moved_share"] == 0


def test_a_city_changed_in_chinese_is_another_word_not_a_misspelling() -> None:
    f = named("明天从北京到上海的高铁票", "明天从北京到广州的高铁票")
    assert f["misspelled_share"] == 0 and f["unexplained_share"] > 0


def test_odd_inputs_give_numbers() -> None:
    for stored, asked in [("", ""), ("?!", "..."), ("\x00", "\ufeff"), ("🙂", "🙃")]:
        assert all(isinstance(v, float) for v in features(stored, asked, 0.5, 0.9))


def test_a_huge_prompt_is_read_only_up_to_the_bounds() -> None:
    # difflib is quadratic: a 4 MB prompt must cost what a long question does, so what lies past the
    # bounds is never read (unbounded, these two calls take minutes).
    many = features(" ".join(["word"] * 50_000), " ".join(["wort"] * 50_000), 0.5, 0.99)
    assert many == features(" ".join(["word"] * 160), " ".join(["wort"] * 160), 0.5, 0.99)
    one_word = named("ab" * 10_000, "ab" * 10_000 + "c")
    assert one_word["character_ratio"] == 1.0  # both cut to the same first 300 characters
    assert one_word["misspelled_share"] == 0  # a 20,000-character "word" is nobody's misspelling
