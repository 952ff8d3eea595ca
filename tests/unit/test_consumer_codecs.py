"""`customer-service consumer` refuses to start without the codecs a producer may compress with."""

from __future__ import annotations

import aiokafka.codec
import pytest

from customer_launcher import cli


def test_the_consumer_starts_only_with_every_codec_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in an image built without aiokafka's codec library: the consumer would
    # stop at the first snappy, lz4 or zstd batch, so it does not start at all.
    monkeypatch.setattr(aiokafka.codec, "cramjam", None)
    assert cli.main(["consumer"]) == 5
    err = capsys.readouterr().err
    assert err.startswith("customer-service consumer: installation: cannot read")
    assert "snappy, lz4, zstd-compressed batches" in err and "cramjam" in err


def test_the_installed_service_has_every_codec() -> None:
    assert aiokafka.codec.has_snappy() and aiokafka.codec.has_lz4() and aiokafka.codec.has_zstd()
