"""PII redaction: exact cases, one per miss found on real traffic, plus the placeholder contract.

Recall and precision are measured by ``bench/pii_bench.py`` on a public labelled corpus against
Presidio's defaults (BENCHMARKS.md), not asserted here: a threshold tuned to a corpus written
beside the code says nothing about the next one.
"""

from __future__ import annotations

import pytest

from tools.privacy import names as pii_names, national_ids
from tools.privacy.patterns import card_brand, luhn_ok
from tools.privacy.redaction import Redactor, not_covered, redact_record, redact_text

NAMES = pii_names.available()
PRESIDIO = national_ids.description().startswith("Presidio")


def clean(text: str) -> str:
    return redact_text(text, names=False).text


# -- phones: every region, not US only ------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("Ring me on +44 20 7946 0958 tonight", "Ring me on <PHONE_1> tonight"),
    ("Rufen Sie 0049 30 901820 an", "Rufen Sie <PHONE_1> an"),
    ("Mobile: 0490 75 40 81", "Mobile: <PHONE_1>"),
    ("Tel. (030) 901820", "Tel. <PHONE_1>"),
    ("call 415-555-0142 for the demo", "call <PHONE_1> for the demo"),
    ("Desk: +1-903-140-4508x769", "Desk: <PHONE_1>"),
])
def test_phone_numbers_are_found_in_foreign_00_prefixed_and_fictional_formats(text: str, expected: str) -> None:
    assert clean(text) == expected


@pytest.mark.parametrize("text", [
    "When: 2000-04-16 11:34:35", "order 4155552671 shipped", "my driver's license number is 2270-66-1551",
    "The restaurant is at 17151 2450 Crown St", "INV-2025-000123", "v1.2.3 build 20240101",
])
def test_dates_order_ids_and_house_numbers_are_not_phone_numbers(text: str) -> None:
    assert redact_text(text, names=False).counts.get("PHONE") is None


# -- every occurrence -----------------------------------------------------------------------------

def test_a_value_found_once_is_replaced_everywhere_in_the_record() -> None:
    record = {"inputs": {"form": {"password": "Tr0ub4dor&3x", "password_confirmation": "Tr0ub4dor&3x",
                                  "note": "typed Tr0ub4dor&3x twice"}},
              "outputs": {"content": "Your password Tr0ub4dor&3x is saved"}}
    redacted, counts = redact_record(record, names=False)
    assert redacted["inputs"]["form"] == {"password": "<SECRET_1>", "password_confirmation": "<SECRET_1>",
                                          "note": "typed <SECRET_1> twice"}
    assert redacted["outputs"] == {"content": "Your password <SECRET_1> is saved"}
    assert counts == {"SECRET": 1}


def test_a_value_found_in_a_later_field_is_also_replaced_in_an_earlier_one() -> None:
    record = {"inputs": {"question": "is Tr0ub4dor&3x strong?"}, "outputs": {"config": "password=Tr0ub4dor&3x"}}
    redacted, _ = redact_record(record, names=False)
    assert redacted["inputs"] == {"question": "is <SECRET_1> strong?"}
    assert redacted["outputs"] == {"config": "password=<SECRET_1>"}


def test_repeats_inside_a_longer_word_are_left_alone() -> None:
    redactor = Redactor(names=False)
    redactor.learn("contact jo@ex.com")
    assert redactor.text("JO@EX.COM and xjo@ex.com.au") == "<EMAIL_1> and <EMAIL_2>"


# -- secrets --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("GITLAB_TOKEN=glpat-xR7vK2mNq9LpWz4TbY8c", "GITLAB_TOKEN=<SECRET_1>"),
    ("groq key gsk_f3Kq9ZxW2mVn8LpR4tYb7HcJ1sDa6GeU0oQiXvNk5MzP2wTy",
     "groq key <SECRET_1>"),
    ("SUPABASE_ACCESS_TOKEN: sbp_4f1e9a7c2b8d6e0f3a5c7e9b1d2f4a6c8e0b2d4f", "SUPABASE_ACCESS_TOKEN: <SECRET_1>"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r",
     "Authorization: Bearer <SECRET_1>"),
])
def test_vendor_keys_the_old_prefix_list_missed_are_redacted(text: str, expected: str) -> None:
    assert clean(text) == expected


def test_an_empty_value_does_not_swallow_the_next_line() -> None:
    text = "API_KEY=\nREGION=eu-west-1\nDEBUG=true"
    assert clean(text) == text


def test_in_a_typed_declaration_the_password_is_redacted_not_the_type() -> None:
    assert clean('val password: String = "hunter2Secret!"') == 'val password: String = "<SECRET_1>"'


def test_plain_words_after_a_key_name_are_not_passwords() -> None:
    assert clean("password: expired") == "password: expired"


# -- emails, cards, ids ---------------------------------------------------------------------------

def test_an_email_glued_to_cjk_text_is_found() -> None:
    assert clean("请联系bob.lee@example.cn获取发票") == "请联系<EMAIL_1>获取发票"


def test_luhn_and_brand_checks_separate_cards_from_other_long_numbers() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert card_brand("378282246310005") == "amex" and card_brand("1234567812345670") is None
    assert redact_text("order 1234567812345670 and 4111111111111112", names=False).counts == {}


@pytest.mark.skipif(not PRESIDIO, reason="presidio-analyzer not installed")
@pytest.mark.parametrize(("text", "kind"), [
    ("NHS number 943 476 5919", "NATIONAL_ID"),
    ("IBAN: GB82 WEST 1234 5698 7654 32", "IBAN"),
    ("codice fiscale RSSMRA85T10A562S", "NATIONAL_ID"),
])
def test_non_us_national_ids_pass_presidios_checksums(text: str, kind: str) -> None:
    assert redact_text(text, names=False).counts == {kind: 1}


@pytest.mark.skipif(not PRESIDIO, reason="presidio-analyzer not installed")
def test_an_id_with_a_wrong_checksum_is_kept() -> None:
    assert redact_text("NHS number 943 476 5918", names=False).counts == {}


def test_us_street_addresses_are_redacted() -> None:
    assert clean("ship to 225 E. John Carpenter Freeway, Suite 1500 Irving, Texas 75062 please") == \
        "ship to <ADDRESS_1> please"


# -- the placeholder contract ---------------------------------------------------------------------

def test_the_same_value_gets_the_same_placeholder_numbered_by_first_appearance() -> None:
    out = redact_text("Mail bob@example.com or ALICE@example.com; again: BOB@example.com. Call 415-555-2671.",
                      names=False)
    assert out.text == "Mail <EMAIL_1> or <EMAIL_2>; again: <EMAIL_1>. Call <PHONE_1>."
    assert out.counts == {"EMAIL": 2, "PHONE": 1}


def test_a_record_shares_one_numbering_across_inputs_outputs_and_expectations() -> None:
    record = {"inputs": {"messages": [{"role": "user", "content": "I am at jo@ex.com, card 4111 1111 1111 1111"}]},
              "outputs": {"content": "Sent to jo@ex.com"},
              "expectations": {"expected_response": "Confirm to jo@ex.com and x@ex.com", "n": 4111111111111111},
              "trace_id": "jo@ex.com"}
    clean_record, counts = redact_record(record, names=False)
    assert clean_record["inputs"]["messages"][0] == {"role": "user", "content": "I am at <EMAIL_1>, card <CARD_1>"}
    assert clean_record["outputs"] == {"content": "Sent to <EMAIL_1>"}
    assert clean_record["expectations"] == {"expected_response": "Confirm to <EMAIL_1> and <EMAIL_2>", "n": "<CARD_1>"}
    assert clean_record["trace_id"] == "jo@ex.com"  # ids are not content
    assert counts == {"CARD": 1, "EMAIL": 2}


def test_redacting_twice_changes_nothing_more() -> None:
    once = clean("key sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW0xY5zA2b from 10.0.0.5")
    assert once == "key <SECRET_1> from <IP_1>"
    assert clean(once) == once


def test_numbering_continues_after_placeholders_already_in_a_record() -> None:
    redactor = Redactor(names=False, existing=["<EMAIL_1> wrote to <EMAIL_2>"])
    assert redactor.text("cc new@ex.com") == "cc <EMAIL_3>"


@pytest.mark.skipif(not NAMES, reason="person-name recogniser unavailable (no spaCy model, or TRACESIEVE_PERSON_NAMES=off)")
def test_person_names_are_redacted_when_a_model_is_installed() -> None:
    out = redact_text("Hi, I'm Maria Gonzalez. Maria Gonzalez again, with John Smith.")
    assert out.text == "Hi, I'm <PERSON_1>. <PERSON_1> again, with <PERSON_2>."


def test_the_report_says_what_could_not_be_redacted() -> None:
    gaps = not_covered()
    assert any(g.startswith("address parts on their own") for g in gaps)
    assert any(g.startswith("person names") for g in gaps) == (not NAMES)
    text = pii_names.description()
    assert text.startswith("spaCy") if NAMES else "NOT redacted" in text


@pytest.mark.parametrize(("text", "expected"), [
    ("My name is Akinori", "My name is <PERSON_1>"),
    ("Directed By:    Leena O Sasi", "Directed By:    <PERSON_1>"),
    ("I work for Microsoft and Google", "I work for Microsoft and Google"),
])
def test_names_after_a_cue_are_redacted_even_where_the_model_misses_them(text: str, expected: str) -> None:
    assert redact_text(text).text == expected
