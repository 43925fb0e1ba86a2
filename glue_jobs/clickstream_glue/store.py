"""The object-store port the jobs list, read and delete through, and its S3 adapter."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class StoredObject:
    """One object: its key and size in bytes."""

    key: str
    size: int


class ObjectStore(ABC):
    """Listing, small reads and writes, and deletes in one bucket."""

    bucket: str

    @abstractmethod
    def list(self, prefix: str, start_after: str | None = None) -> list[StoredObject]:
        """Every object under ``prefix`` (after the key ``start_after``, if given), sorted."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The body of one object."""

    @abstractmethod
    def get_if_exists(self, key: str) -> bytes | None:
        """The body of one object, or None when there is no such key."""

    @abstractmethod
    def put(self, key: str, body: bytes) -> None:
        """Write one object."""

    @abstractmethod
    def delete(self, keys: Sequence[str]) -> None:
        """Delete the objects (missing ones are fine)."""

    def uri(self, key: str = "") -> str:
        """``s3://bucket/key``: the path Spark reads and writes."""
        return f"s3://{self.bucket}/{key}"


class S3Store(ObjectStore):
    """An S3 bucket through boto3 (``AWS_ENDPOINT_URL`` points it at a local endpoint)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def list(self, prefix: str, start_after: str | None = None) -> list[StoredObject]:
        """Every object under ``prefix`` (after the key ``start_after``, if given), sorted."""
        found: list[StoredObject] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        after = {"StartAfter": start_after} if start_after else {}
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **after):
            found.extend(StoredObject(o["Key"], o["Size"]) for o in page.get("Contents", []))
        return sorted(found)

    def get(self, key: str) -> bytes:
        """The body of one object."""
        return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def get_if_exists(self, key: str) -> bytes | None:
        """The body of one object, or None when S3 answers ``NoSuchKey``."""
        try:
            return self.get(key)
        except self._s3.exceptions.NoSuchKey:
            return None

    def put(self, key: str, body: bytes) -> None:
        """Write one object."""
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def delete(self, keys: Sequence[str]) -> None:
        """DeleteObjects in chunks of 1,000; raises if any key could not be deleted."""
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": key} for key in keys[start : start + 1000]]
            response = self._s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}
            )
            errors = response.get("Errors", [])
            if errors:
                raise RuntimeError(f"could not delete {len(errors)} object(s): {errors[0]}")
