"""``ProviderInfo.field`` answers from the provider's own fields, also for a copy made with
other fields (the lookup is built with each ``ProviderInfo``, for the manifest's speed)."""

from __future__ import annotations

import dataclasses

from batchgen.providers.grokimagine import GROKIMAGINE
from batchgen.providers.xai import XAI


def test_a_provider_finds_each_of_its_fields_and_no_other() -> None:
    for info in (GROKIMAGINE, XAI):
        for field in info.fields:
            assert info.field(field.name) is field
        assert info.field("no such field") is None


def test_a_copy_with_fewer_fields_does_not_keep_the_original_s() -> None:
    first, *rest = XAI.fields
    copy = dataclasses.replace(XAI, fields=(first,))
    assert copy.field(first.name) is first
    assert rest and all(copy.field(f.name) is None for f in rest)
    assert all(XAI.field(f.name) is f for f in rest)  # the original is untouched
