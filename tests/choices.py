"""The small Text + Choices project many tests use: its labeling config and results for it."""

from __future__ import annotations

from typing import Any

# Choices "sentiment" of Pos/Neg on the task's "text" (tests/fixtures/configs/sentiment.xml
# has Positive/Negative/Neutral under the same names).
CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text"><Choice value="Pos"/><Choice value="Neg"/></Choices>
</View>"""


def choice_result(choice: str = "Neg") -> list[dict[str, Any]]:
    """A completion's result choosing ``choice`` in the "sentiment" Choices."""
    return [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": [choice]},
        }
    ]
