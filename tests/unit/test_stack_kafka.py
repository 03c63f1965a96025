"""The local broker's cluster id: the format kafka-storage accepts on its command line."""

from __future__ import annotations

import base64

from vigie_dev.stack.kafka import new_cluster_id


def test_cluster_ids_never_read_as_an_option() -> None:
    """Drawn at random, one id in 64 would start with "-" (5,000 draws: about 78)."""
    ids = [new_cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
