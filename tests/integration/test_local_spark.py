"""Local PySpark on the moto S3 over s3a://, with a Hive metastore in embedded Derby."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from clickstream_local.aws import LOCAL_CREDENTIALS
from clickstream_local.spark import pyspark_hadoop_version, s3a_jars

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_hadoop_aws_matches_the_hadoop_inside_pyspark() -> None:
    # GIVEN pyspark's own Hadoop version WHEN the s3a jars are fetched THEN hadoop-aws matches it
    version = pyspark_hadoop_version()
    names = [jar.name for jar in s3a_jars()]
    assert f"hadoop-aws-{version}.jar" in names
    assert any(name.startswith("aws-java-sdk-bundle-") for name in names)


def test_reads_raw_lines_writes_partitioned_parquet_and_queries_it_through_hive(
    spark: object, moto_endpoint: str
) -> None:
    # GIVEN three JSON lines in two hourly raw prefixes of a bucket on the moto server
    s3 = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", **LOCAL_CREDENTIALS
    )
    s3.create_bucket(Bucket="spark-lake")
    s3.put_object(
        Bucket="spark-lake",
        Key="rawdata/2026/03/07/14/a",
        Body=b'{"custid":1,"url":"a"}\n{"custid":2,"url":"b"}\n',
    )
    s3.put_object(
        Bucket="spark-lake", Key="rawdata/2026/03/07/15/b", Body=b'{"custid":3,"url":"a"}\n'
    )

    # WHEN Spark reads them recursively and writes Parquet partitioned by url
    lines = spark.read.option("recursiveFileLookup", "true").json("s3a://spark-lake/rawdata/")
    lines.write.mode("overwrite").partitionBy("url").parquet("s3a://spark-lake/curated/pages/")
    spark.sql("CREATE DATABASE IF NOT EXISTS lake")
    spark.sql(
        "CREATE TABLE lake.pages (custid BIGINT, url STRING) USING parquet PARTITIONED BY (url) "
        "LOCATION 's3a://spark-lake/curated/pages/'"
    )
    spark.sql("MSCK REPAIR TABLE lake.pages")
    counts = {
        row["url"]: row["n"]
        for row in spark.sql("SELECT url, COUNT(*) AS n FROM lake.pages GROUP BY url").collect()
    }

    # THEN the objects are Hive-style partitions in S3 and the metastore table counts every line
    keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket="spark-lake")["Contents"]]
    assert any(key.startswith("curated/pages/url=a/") and key.endswith(".parquet") for key in keys)
    assert counts == {"a": 2, "b": 1}
    tables = [row["tableName"] for row in spark.sql("SHOW TABLES IN lake").collect()]
    assert tables == ["pages"]


def test_the_metastore_is_a_derby_database_in_the_given_folder(spark: object) -> None:
    # GIVEN the session's warehouse setting WHEN we look at the folder THEN Derby lives beside it
    warehouse = Path(spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    assert (warehouse.parent / "metastore_db").is_dir()
