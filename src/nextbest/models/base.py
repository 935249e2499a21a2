"""Shared pydantic pieces: camelCase JSON names, snake_case attributes, no extras; ids."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..store import MAX_ID_LENGTH, id_problem


def check_id(value: str) -> str:
    """``value`` if it is a valid id (:func:`nextbest.store.id_problem`), else ValueError."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: An id as every entry point takes it (the store's rule: 1-256 characters, no controls).
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(check_id)]


class CamelModel(BaseModel):
    """Base for documents authors write: camelCase keys, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )
