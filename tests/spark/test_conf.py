"""Session settings for a block, put back as they were: set keys to their value, unset keys unset."""

from __future__ import annotations

import pytest
from lakeboost.spark.conf import session_conf
from pyspark.sql import SparkSession

SET, UNSET = "spark.sql.shuffle.partitions", "spark.lakeboost.test.unset"


def test_settings_hold_in_every_session_for_the_block_and_are_put_back_after_it(spark: SparkSession) -> None:
    other = spark.newSession()  # a session of its own conf, as a streaming query's clone is
    other.conf.set(SET, "7")
    before = spark.conf.get(SET)
    with pytest.raises(RuntimeError, match="inside"), session_conf({SET: "3", UNSET: "on"}, spark, other, spark):
        assert [s.conf.get(SET) for s in (spark, other)] == ["3", "3"]
        assert [s.conf.get(UNSET, None) for s in (spark, other)] == ["on", "on"]
        raise RuntimeError("inside")  # put back all the same
    assert spark.conf.get(SET) == before and other.conf.get(SET) == "7"
    assert spark.conf.get(UNSET, None) is None and other.conf.get(UNSET, None) is None
