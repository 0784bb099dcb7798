"""Translation between OpenAI's chat completions and Anthropic's Messages API: pure functions, both ways.

`openai_to_anthropic`: an OpenAI-format request sent to an Anthropic upstream, and its answer,
stream and errors back. `anthropic_to_openai`: a Messages request sent to an OpenAI-compatible
upstream, and back.
"""
