"""The OpenAI Python client (PyPI `openai`) against the Switchyard endpoint, for
crates/engine/tests/router_openai.rs.

Usage: openai_client.py BASE_URL CHAT_MODEL EMBEDDING_MODEL

Lists the models, asks one chat completion, streams another, and asks embeddings
of two texts; prints what it saw as one JSON object. Exits 3 when the `openai`
package is missing.
"""

import json
import sys

try:
    import openai
except ImportError:
    sys.stderr.write(
        "the PyPI openai package is needed: pip install openai "
        "(scripts/install.sh test puts it in the test venv, $SWITCHYARD_PYTHON)\n"
    )
    sys.exit(3)


def main() -> None:
    base_url, chat_model, embedding_model = sys.argv[1:4]
    # The endpoint needs no key; the client insists on one.
    client = openai.OpenAI(
        base_url=base_url, api_key="not-needed", max_retries=0, timeout=120
    )
    messages = [{"role": "user", "content": "Say hi"}]

    ids = [model.id for model in client.models.list()]

    chat = client.chat.completions.create(
        model=chat_model, messages=messages, max_tokens=4, seed=1
    )
    choice = chat.choices[0]

    chunks = 0
    streamed = ""
    finish_reasons = []
    stream = client.chat.completions.create(
        model=chat_model, messages=messages, max_tokens=8, seed=1, stream=True
    )
    for chunk in stream:
        chunks += 1
        for part in chunk.choices:
            streamed += part.delta.content or ""
            if part.finish_reason is not None:
                finish_reasons.append(part.finish_reason)

    embeddings = client.embeddings.create(
        model=embedding_model, input=["a switch yard", "at dusk"]
    )
    vectors = [item.embedding for item in embeddings.data]

    print(
        json.dumps(
            {
                "openai_version": openai.__version__,
                "models": ids,
                "chat": {
                    "model": chat.model,
                    "content": choice.message.content,
                    "finish_reason": choice.finish_reason,
                    "completion_tokens": chat.usage.completion_tokens
                    if chat.usage
                    else None,
                },
                "stream": {
                    "chunks": chunks,
                    "text": streamed,
                    "finish_reasons": finish_reasons,
                },
                "embeddings": {
                    "count": len(vectors),
                    "indexes": [item.index for item in embeddings.data],
                    "dimensions": [len(vector) for vector in vectors],
                    "finite": all(
                        value == value and abs(value) != float("inf")
                        for vector in vectors
                        for value in vector
                    ),
                    "differ": len(vectors) == 2 and vectors[0] != vectors[1],
                },
            }
        )
    )


if __name__ == "__main__":
    main()
