"""The lookup index packs GUIDs as integers: every id comes back exactly as the store keeps it."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from shared.sync.lookups import CouplingIndex

guids = st.uuids().map(str)
# Any other text, GUIDs in other spellings among them ("{...}", upper case, no hyphens).
other_ids = (
    st.text(min_size=1, max_size=40)
    | st.uuids().map(lambda u: str(u).upper())
    | st.uuids().map(lambda u: u.hex)
)


@given(st.lists(st.tuples(guids | other_ids, guids | other_ids, st.none() | st.text(max_size=20))))
def test_ids_and_codes_round_trip(pairs):
    index = CouplingIndex(with_refs=True)
    for bc_id, crm_id, ref in pairs:
        index.add(bc_id, crm_id, ref)
    last_crm = {bc: crm for bc, crm, _ in pairs}
    last_bc = {crm: bc for bc, crm, _ in pairs}
    for bc_id, crm_id in last_crm.items():
        assert index.crm_id(bc_id) == crm_id
    for crm_id, bc_id in last_bc.items():
        assert index.bc_id(crm_id) == bc_id


def test_codes_are_kept_only_when_asked_for():
    bc, crm = str(uuid.uuid4()), str(uuid.uuid4())
    plain, coded = CouplingIndex(), CouplingIndex(with_refs=True)
    for index in (plain, coded):
        index.add(bc, crm, "C00010")
    assert (plain.ref(bc), plain.bc_id_of_ref("C00010")) == (None, None)
    assert (coded.ref(bc), coded.bc_id_of_ref("C00010")) == ("C00010", bc)
    assert plain.crm_id(bc) == crm and plain.crm_id(str(uuid.uuid4())) is None
