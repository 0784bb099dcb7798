"""What the gateway accepts: OpenAI's chat completion and embeddings requests and Anthropic's Messages request,
checked before anything is published.

Unknown fields are allowed and passed through (new OpenAI parameters must not need a release);
the types of the fields the cache depends on are checked strictly, as OpenAI does: "1.7" is not a
temperature (the body is forwarded as sent, so a lenient check would let the cache worker's
temperature rule see a string).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError


def _printable(name: str) -> str:
    # A NUL would make the request's usage event one PostgreSQL can't store: answered, never accounted.
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("a model name must not contain control characters")
    return name


ModelName = Annotated[StrictStr, Field(min_length=1, max_length=256), AfterValidator(_printable)]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: StrictStr | list[dict[str, Any]] | None = None
    name: StrictStr | None = None

    @model_validator(mode="after")
    def _content_unless_the_assistant_calls_tools(self) -> ChatMessage:
        # As OpenAI: only an assistant's message (which may carry tool calls instead) may go without content.
        if self.content is None and self.role not in ("assistant", "function"):
            raise PydanticCustomError("missing", "a {role} message needs its content", {"role": self.role})
        return self


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool | None = None


class ChatCompletionBody(BaseModel):
    """A chat completion request as OpenAI's API documents it."""

    model_config = ConfigDict(extra="allow")

    model: ModelName
    messages: list[ChatMessage] = Field(min_length=1, max_length=10_000)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    temperature: StrictFloat | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1)
    n: StrictInt | None = Field(default=None, ge=1, le=128)
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    presence_penalty: StrictFloat | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: StrictFloat | None = Field(default=None, ge=-2, le=2)
    seed: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: StrictStr | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    user: StrictStr | None = None


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: StrictStr | list[dict[str, Any]]


class MessagesBody(BaseModel):
    """A Messages API request as Anthropic documents it (max_tokens required, as Anthropic requires it)."""

    model_config = ConfigDict(extra="allow")

    model: ModelName
    max_tokens: StrictInt = Field(ge=1)
    messages: list[AnthropicMessage] = Field(min_length=1, max_length=10_000)
    system: StrictStr | list[dict[str, Any]] | None = None
    stream: StrictBool = False
    temperature: StrictFloat | None = Field(default=None, ge=0, le=1)
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1)
    top_k: StrictInt | None = Field(default=None, ge=0)
    stop_sequences: list[StrictStr] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


NonEmptyText = Annotated[StrictStr, Field(min_length=1)]
TokenArray = Annotated[list[StrictInt], Field(min_length=1)]
MAX_EMBEDDING_INPUTS = 2048  # OpenAI's limit per request; it also bounds the vectors of one broker message


class EmbeddingsBody(BaseModel):
    """An embeddings request as OpenAI's API documents it: text or token arrays, one or a batch."""

    model_config = ConfigDict(extra="allow")

    model: ModelName
    input: (
        NonEmptyText
        | Annotated[list[NonEmptyText], Field(min_length=1)]
        | TokenArray
        | Annotated[list[TokenArray], Field(min_length=1)]
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: StrictInt | None = Field(default=None, ge=1)
    user: StrictStr | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _at_most_2048_inputs(cls, value: Any) -> Any:
        # Checked before the union's members, which would each report their own error ("not a string", ...).
        one_token_array = isinstance(value, list) and all(isinstance(x, int) for x in value)
        if isinstance(value, list) and len(value) > MAX_EMBEDDING_INPUTS and not one_token_array:
            raise PydanticCustomError(
                "too_many_inputs",
                "at most {limit} inputs per request, not {count}: send the others in another request",
                {"limit": MAX_EMBEDDING_INPUTS, "count": len(value)},
            )
        return value
