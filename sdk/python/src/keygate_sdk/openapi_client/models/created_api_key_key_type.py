from typing import Literal, cast

CreatedApiKeyKeyType = Literal["private", "public"]

CREATED_API_KEY_KEY_TYPE_VALUES: set[CreatedApiKeyKeyType] = {
    "private",
    "public",
}


def check_created_api_key_key_type(value: str) -> CreatedApiKeyKeyType:
    if value in CREATED_API_KEY_KEY_TYPE_VALUES:
        return cast(CreatedApiKeyKeyType, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {CREATED_API_KEY_KEY_TYPE_VALUES!r}")
