from typing import Literal, cast

ApiKeyKeyType = Literal["private", "public"]

API_KEY_KEY_TYPE_VALUES: set[ApiKeyKeyType] = {
    "private",
    "public",
}


def check_api_key_key_type(value: str) -> ApiKeyKeyType:
    if value in API_KEY_KEY_TYPE_VALUES:
        return cast(ApiKeyKeyType, value)
    raise TypeError(f"Unexpected value {value!r}. Expected one of {API_KEY_KEY_TYPE_VALUES!r}")
