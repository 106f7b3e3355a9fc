"""Texting in the consortium file (docs/sms.md, "Numbers"): import, validation with paths, export, admin."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from consortium.models import Consortium
from libraries.consortium_file.export import export
from libraries.consortium_file.importer import apply
from libraries.consortium_file.schema import InvalidConsortiumFile
from libraries.consortium_file.validate import normalize, validate
from libraries.models import Library
from tests.libraries.test_consortium_file import run, without_passwords, world, write

pytestmark = [pytest.mark.django_db]  # test_settings hashes passwords fast already


def texting_world() -> dict[str, Any]:
    data = world()
    data["consortium"]["sms_number"] = "+18505550100"
    data["consortium"]["sms_help"] = "Gulf Coast Ask: librarians answer texts. Reply STOP to stop."
    data["consortium"]["settings"]["sms_idle"] = 900
    data["libraries"][0]["sms_number"] = "+18135550101"
    data["libraries"][0]["sms_keyword"] = "TAMPA"
    data["libraries"][1]["sms_keyword"] = "stpete"
    return data


def test_numbers_and_keywords_import_and_export_round_trip(tmp_path: Path) -> None:
    data = texting_world()
    run(write(tmp_path, data))
    gulf = Consortium.objects.get(slug="gulf")
    assert (gulf.sms_number, gulf.sms_idle) == ("+18505550100", 900)
    tampa = Library.objects.get(slug="tampa")
    assert (tampa.sms_number, tampa.sms_keyword) == ("+18135550101", "TAMPA")
    assert Library.objects.get(slug="pcola").sms_number is None
    exported = export(gulf)
    assert exported == without_passwords(normalize(data))
    assert exported["consortium"]["sms_number"] == "+18505550100"
    assert exported["libraries"][2]["sms_number"] == "+18135550101"  # sorted by slug: pcola, stpete, tampa
    out, _ = run(write(tmp_path, exported, "again.yaml"))
    assert "Nothing changed." in out


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["consortium"].__setitem__("sms_number", "850-555-0100"),
     'consortium.sms_number: "850-555-0100" is not a phone number in E.164 form'),
    (lambda d: d["consortium"].__setitem__("sms_number", 18505550100),
     'consortium.sms_number: write numbers in quotes with their + ("+18505550100")'),
    (lambda d: d["libraries"][2].__setitem__("sms_number", "+18505550100"),
     'libraries[2].sms_number: number "+18505550100" is already at consortium.sms_number'),
    (lambda d: d["libraries"][2].__setitem__("sms_keyword", "Tampa"),
     'libraries[2].sms_keyword: keyword "Tampa" is already at libraries[0].sms_keyword'),
    (lambda d: d["libraries"][2].__setitem__("sms_keyword", "pen sacola"),
     'libraries[2].sms_keyword: "pen sacola" is not a keyword: use 2-20 letters or digits'),
    (lambda d: d["libraries"][2].__setitem__("sms_keyword", "x"),
     'libraries[2].sms_keyword: "x" is not a keyword'),
    (lambda d: d["consortium"].__setitem__("sms_help", "x" * 400),
     "consortium.sms_help: is 400 characters long; at most 320"),
    (lambda d: d["libraries"][0].__setitem__("sms_numbr", "+18135550101"),
     'libraries[0].sms_numbr: unknown key (did you mean "sms_number"?)'),
])
def test_bad_numbers_and_keywords_are_reported_with_paths(change: Any, expected: str) -> None:
    data = texting_world()
    change(data)
    problems = [str(p) for p in validate(data)]
    assert any(p.startswith(expected) for p in problems), problems


def test_a_number_of_another_consortium_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    run(write(tmp_path, texting_world(), "gulf.yaml"))
    other = world()
    other["consortium"]["slug"] = "panhandle"
    for s in other["staff"]:
        s["username"] = "p-" + s["username"]
    other["libraries"][1]["sms_number"] = "+18135550101"  # tampa's, in gulf
    other["consortium"]["sms_number"] = "+18505550100"  # gulf's own
    with pytest.raises(InvalidConsortiumFile) as refused:
        apply(other, prune=False)
    assert sorted(str(p) for p in refused.value.problems) == [
        'consortium.sms_number: "+18505550100" is the number of another consortium ("gulf")',
        'libraries[1].sms_number: "+18135550101" is the number of a library of another consortium ("gulf")',
    ]
    with pytest.raises(CommandError):
        call_command("import_consortium", str(write(tmp_path, other, "panhandle.yaml")), stdout=StringIO(),
                     stderr=StringIO())
    assert not Consortium.objects.filter(slug="panhandle").exists()


def test_a_number_moves_between_libraries_and_the_consortium_in_one_import(tmp_path: Path) -> None:
    data = texting_world()
    run(write(tmp_path, data))
    # Swap: the consortium's number goes to pcola, tampa's to the consortium (unique columns both).
    data["libraries"][2]["sms_number"] = "+18505550100"
    data["consortium"]["sms_number"] = "+18135550101"
    del data["libraries"][0]["sms_number"]
    out, _ = run(write(tmp_path, data, "swapped.yaml"))
    assert "updated" in out
    assert Consortium.objects.get(slug="gulf").sms_number == "+18135550101"
    assert Library.objects.get(slug="pcola").sms_number == "+18505550100"
    assert Library.objects.get(slug="tampa").sms_number is None


def test_the_admin_checks_numbers_and_keywords(tmp_path: Path) -> None:
    run(write(tmp_path, texting_world()))
    pcola = Library.objects.get(slug="pcola")
    pcola.sms_number = "+18505550100"  # the consortium's
    pcola.sms_keyword = "tampa"  # tampa's, in other letters' case
    with pytest.raises(ValidationError) as info:
        pcola.full_clean()
    assert set(info.value.message_dict) == {"sms_number"}  # clean() stops at the first; fields first
    pcola.sms_number = "5550100"
    with pytest.raises(ValidationError) as info:
        pcola.full_clean()
    assert "E.164" in str(info.value.message_dict["sms_number"])
    pcola.sms_number = None
    with pytest.raises(ValidationError) as info:
        pcola.full_clean()
    assert "keyword" in str(info.value.message_dict["sms_keyword"])
