"""Pure parts of the option-set adapter (shared/connectors/option_sets.py): record ids, values of new
options, labels."""

from __future__ import annotations

import uuid

from shared.connectors.option_sets import (
    FIRST_VALUE,
    OPTION_SETS,
    SPAN,
    label_text,
    option_id,
    preferred_value,
)

PAY = OPTION_SETS["accounts.paymenttermscode"]


def test_ids_are_the_external_value_or_made_from_the_value() -> None:
    external = str(uuid.uuid4())
    assert option_id(PAY, 100000001, external.upper()) == external
    made = option_id(PAY, 3)
    assert made == option_id(PAY, 3, "not a guid") == option_id(PAY, 3, None)
    assert made != option_id(PAY, 4)
    assert made != option_id(OPTION_SETS["accounts.address1_freighttermscode"], 3)


def test_a_new_option_value_comes_from_its_id_and_probes_past_taken_values() -> None:
    record_id = str(uuid.uuid4())
    first = preferred_value(record_id, set())
    assert first == FIRST_VALUE + uuid.UUID(record_id).int % SPAN
    assert preferred_value(record_id, {1, 2, 3}) == first  # the table's own options are not in the range
    second = preferred_value(record_id, {first})
    assert second == FIRST_VALUE + (first - FIRST_VALUE + 1) % SPAN
    assert (
        preferred_value(record_id, {FIRST_VALUE + (first - FIRST_VALUE + i) % SPAN for i in range(20)})
        is None
    )


def test_labels_prefer_the_users_language() -> None:
    assert (
        label_text({"UserLocalizedLabel": {"Label": "Net 30"}, "LocalizedLabels": [{"Label": "x"}]})
        == "Net 30"
    )
    assert (
        label_text({"UserLocalizedLabel": None, "LocalizedLabels": [{"Label": ""}, {"Label": "FOB"}]})
        == "FOB"
    )
    assert label_text(None) == "" and label_text({}) == ""
