"""xAI's create call, checked: the body of ``POST /v1/videos/generations`` becomes a
``VideoRequest`` or a ``Rejection`` with the HTTP status xAI gives it; and the price table.

Sources: ``../shared/xai-video-api.md`` sections 2 (fields, defaults, aliases), 4 (which code
for which fault) and 8 (prices). Where the contract is silent the simulator decides, and says so:

* a missing ``model`` is a 422 (its REST default is not documented; the SDK requires it), so a
  client that forgets it is caught;
* a value of the wrong JSON type, or a required field missing, is 422 ("invalid format");
  a well-typed value outside its range or set is 400 ("invalid argument"), as in the
  contract's own example ("Invalid duration 16");
* an image given by URL must be an absolute http(s) URL or a base64 data URI whose bytes are
  a JPEG, PNG or WebP picture; by ``file_id``, a stored, unexpired image of the caller's team
  (else 400);
* 1080p is priced at 1.5 x 720p for ``grok-imagine-video-1.5`` (the contract says "not
  documented"; a number is needed to bill it);
* fields the contract lists as out of scope (``reference_images``, ``output``,
  ``storage_options``) and unknown ones are ignored.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import filetype

__all__ = [
    "ASPECT_RATIOS",
    "DEFAULT_ASPECT_RATIO",
    "DEFAULT_DURATION",
    "DEFAULT_RESOLUTION",
    "IMAGE_TICKS",
    "MODELS",
    "SECOND_TICKS",
    "TICKS_PER_USD",
    "Rejection",
    "VideoRequest",
    "image_kind",
    "parse_create",
    "price_ticks",
]

#: 1 USD in ``usage.cost_in_usd_ticks`` (xai-video-api.md section 3).
TICKS_PER_USD = 10_000_000_000
#: Model names accepted -> the model that runs (and is billed); the 1.5-preview is an alias.
MODELS: dict[str, str] = {
    "grok-imagine-video": "grok-imagine-video",
    "grok-imagine-video-1.5": "grok-imagine-video-1.5",
    "grok-imagine-video-1.5-preview": "grok-imagine-video-1.5",
}
#: Ticks per generated second, by model and resolution (section 8; 1.5 at 1080p: see above).
SECOND_TICKS: dict[str, dict[str, int]] = {
    "grok-imagine-video": {"480p": 500_000_000, "720p": 700_000_000},
    "grok-imagine-video-1.5": {
        "480p": 800_000_000,
        "720p": 1_400_000_000,
        "1080p": 2_100_000_000,
    },
}
#: Ticks per input image, by model (section 8: $0.002 and $0.01).
IMAGE_TICKS: dict[str, int] = {
    "grok-imagine-video": 20_000_000,
    "grok-imagine-video-1.5": 100_000_000,
}
ASPECT_RATIOS: tuple[str, ...] = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
DEFAULT_DURATION = 8
DEFAULT_RESOLUTION = "480p"
DEFAULT_ASPECT_RATIO = "16:9"
_MIN_DURATION, _MAX_DURATION = 1, 15
_DATA_URI = re.compile(r"data:image/(jpeg|png|webp);base64,([A-Za-z0-9+/]+={0,2})", re.ASCII)
_DECIMAL = re.compile(r"[0-9]+", re.ASCII)
#: The pictures xAI takes as input (section 2), by MIME type.
_PICTURES = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp"}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A create (or upload) the vendor refuses: HTTP ``status`` and the ``error`` text."""

    status: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoRequest:
    """A create request as xAI understands it, defaults filled in.

    ``model`` is the model that runs (an alias resolved); ``image`` the image as sent
    (``{"url": ...}`` or ``{"file_id": ...}``), or None for text-to-video.
    """

    model: str
    prompt: str
    duration: int
    resolution: str
    aspect_ratio: str
    image: dict[str, str] | None

    @property
    def table_ticks(self) -> int:
        """What the price table says this request costs, in ticks."""
        return price_ticks(self.model, self.resolution, self.duration, self.image is not None)

    def echo(self) -> dict[str, Any]:
        """The normalised request, as the stats keep it."""
        echoed: dict[str, Any] = {
            "model": self.model,
            "prompt": self.prompt,
            "duration": self.duration,
            "resolution": self.resolution,
            "aspect_ratio": self.aspect_ratio,
        }
        if self.image is not None:
            echoed["image"] = dict(self.image)
        return echoed


def price_ticks(model: str, resolution: str, seconds: int, with_image: bool) -> int:
    """Ticks for ``seconds`` of ``model`` at ``resolution``, plus one input image if any.

    Raises ``KeyError`` for a model or resolution the table does not price.
    """
    image = IMAGE_TICKS[model] if with_image else 0
    return seconds * SECOND_TICKS[model][resolution] + image


#: Checks a ``file_id`` for the caller: None when usable, else why not.
FileCheck = Callable[[str], "str | None"]


def parse_create(body: object, check_file: FileCheck) -> VideoRequest | Rejection:
    """The ``VideoRequest`` that a parsed JSON ``body`` asks for, or the first problem."""
    if not isinstance(body, dict):
        return Rejection(422, "Failed to deserialize the JSON body: expected an object")
    steps: tuple[Callable[[dict[str, Any], dict[str, Any]], Rejection | None], ...] = (
        _model,
        _prompt,
        _duration,
        _resolution,
        _aspect_ratio,
        _user,
        lambda b, out: _image(b, out, check_file),
        _prompt_or_image,
    )
    out: dict[str, Any] = {}
    for step in steps:
        problem = step(body, out)
        if problem is not None:
            return problem
    return VideoRequest(**out)


def _wrong_type(field: str, expected: str) -> Rejection:
    return Rejection(422, f"Failed to deserialize the JSON body: `{field}` must be {expected}")


def _model(body: dict[str, Any], out: dict[str, Any]) -> Rejection | None:
    model = body.get("model")
    if model is None:
        return Rejection(422, "Failed to deserialize the JSON body: missing field `model`")
    if not isinstance(model, str):
        return _wrong_type("model", "a string")
    if model not in MODELS:
        return Rejection(
            404, f"The model {model} does not exist or your team does not have access to it."
        )
    out["model"] = MODELS[model]
    return None


def _prompt(body: dict[str, Any], out: dict[str, Any]) -> Rejection | None:
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        return _wrong_type("prompt", "a string")
    out["prompt"] = prompt or ""
    return None


def _duration(body: dict[str, Any], out: dict[str, Any]) -> Rejection | None:
    if body.get("duration") is not None and body.get("seconds") is not None:
        return Rejection(400, "Send `duration` or its alias `seconds`, not both.")
    name = "seconds" if body.get("seconds") is not None else "duration"
    value = body.get(name)
    if value is None:
        out["duration"] = DEFAULT_DURATION
        return None
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return _wrong_type(name, "an integer number of seconds")
    if not _MIN_DURATION <= value <= _MAX_DURATION:
        return Rejection(
            400,
            f"Invalid duration {value}: duration must be between {_MIN_DURATION} and "
            f"{_MAX_DURATION} seconds.",
        )
    out["duration"] = value
    return None


def _resolution(body: dict[str, Any], out: dict[str, Any]) -> Rejection | None:
    resolution = body.get("resolution", DEFAULT_RESOLUTION)
    if not isinstance(resolution, str):
        return _wrong_type("resolution", "a string")
    offered = SECOND_TICKS[out["model"]]
    if resolution not in offered:
        return Rejection(
            400,
            f"Invalid resolution {resolution!r} for model {out['model']}: "
            f"expected one of {', '.join(offered)}.",
        )
    out["resolution"] = resolution
    return None


def _aspect_ratio(body: dict[str, Any], out: dict[str, Any]) -> Rejection | None:
    ratio = body.get("aspect_ratio", DEFAULT_ASPECT_RATIO)
    if not isinstance(ratio, str):
        return _wrong_type("aspect_ratio", "a string")
    if ratio not in ASPECT_RATIOS:
        return Rejection(
            400,
            f"Invalid aspect_ratio {ratio!r}: expected one of {', '.join(ASPECT_RATIOS)}.",
        )
    out["aspect_ratio"] = ratio
    return None


def _user(body: dict[str, Any], out: dict[str, Any]) -> Rejection | None:
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        return _wrong_type("user", "a string")
    return None


def _image(body: dict[str, Any], out: dict[str, Any], check_file: FileCheck) -> Rejection | None:
    if body.get("image") is not None and body.get("input_reference") is not None:
        return Rejection(400, "Send `image` or its alias `input_reference`, not both.")
    name = "input_reference" if body.get("input_reference") is not None else "image"
    image = body.get(name)
    out["image"] = None
    if image is None:
        return None
    if not isinstance(image, dict):
        return _wrong_type(name, "an object with `url` or `file_id`")
    given = [key for key in ("url", "image_url", "file_id") if image.get(key) is not None]
    if len(given) != 1:
        return Rejection(400, f"`{name}` needs exactly one of `url` or `file_id`.")
    key = given[0]
    value = image[key]
    if not isinstance(value, str):
        return _wrong_type(f"{name}.{key}", "a string")
    problem = check_file(value) if key == "file_id" else _url_problem(value)
    if problem is not None:
        return Rejection(400, f"Invalid `{name}.{key}`: {problem}")
    out["image"] = {"file_id" if key == "file_id" else "url": value}
    return None


def _prompt_or_image(body: dict[str, Any], out: dict[str, Any]) -> Rejection | None:
    if out["image"] is not None:
        return None
    if body.get("prompt") is None:
        return Rejection(422, "Failed to deserialize the JSON body: missing field `prompt`")
    if not out["prompt"].strip():
        return Rejection(400, "A prompt is required when no image is given.")
    return None


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an input image (None when it can)."""
    match = _DATA_URI.fullmatch(url)
    if match is not None:
        try:
            picture = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            return "the data URI is not valid base64"
        if image_kind(picture) is None:
            return "the data URI does not hold a JPEG, PNG or WebP picture"
        return None
    if url.startswith("data:"):
        return "a data URI must be data:image/(jpeg|png|webp);base64,..."
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname or url != url.strip():
        return "expected a public http(s) URL or a base64 data URI"
    return None


def image_kind(data: bytes) -> str | None:
    """``jpeg``, ``png`` or ``webp`` when ``data`` starts like one (told by ``filetype``, from
    the first bytes), else None."""
    kind = filetype.guess_mime(data)
    return _PICTURES.get(kind) if kind else None
