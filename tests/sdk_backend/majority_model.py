"""A tiny model on today's ``label-studio-ml`` SDK, run by its own Python (a separate venv:
the SDK pins Flask 1.1 and itsdangerous 2.0, which labelgraph cannot share).

``python majority_model.py MODEL_DIR RECORD_FILE`` serves the SDK's Flask app on a free port
of 127.0.0.1 and prints ``listening on http://127.0.0.1:<port>``. The model predicts, for the
first Choices of the config, the choice seen most often in the training data it was given
(``Neutral`` before any training), and writes every ``fit()`` call's input to RECORD_FILE.
"""

from __future__ import annotations

import collections
import json
import sys
from typing import Any

# The SDK is installed only in the model's own venv.
from label_studio_ml.api import init_app  # type: ignore[import-not-found]
from label_studio_ml.model import LabelStudioMLBase  # type: ignore[import-not-found]
from werkzeug.serving import make_server

RECORD = sys.argv[2]


class MajorityModel(LabelStudioMLBase):  # type: ignore[misc]
    def _control(self) -> tuple[str, str]:
        for name, info in self.parsed_label_config.items():
            if info["type"] == "Choices":
                return name, info["to_name"][0]
        raise ValueError("the config has no Choices")

    def predict(self, tasks: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
        choice = self.train_output.get("majority") or "Neutral"
        from_name, to_name = self._control()
        return [
            {
                "result": [
                    {
                        "from_name": from_name,
                        "to_name": to_name,
                        "type": "choices",
                        "value": {"choices": [choice]},
                    }
                ],
                "score": 0.5,
            }
            for _ in tasks
        ]

    def fit(self, tasks: Any, workdir: str | None = None, **kwargs: Any) -> dict[str, Any]:
        tasks = list(tasks)
        with open(RECORD, "a", encoding="utf-8") as record:
            record.write(json.dumps({"tasks": tasks, "kwargs": kwargs}) + "\n")
        counts: collections.Counter[str] = collections.Counter()
        for task in tasks:
            for completion in task.get("annotations") or task.get("completions") or []:
                for item in completion.get("result", []):
                    counts.update(item.get("value", {}).get("choices", []))
        majority = counts.most_common(1)[0][0] if counts else None
        return {"majority": majority, "tasks": len(tasks)}


def main() -> None:
    app = init_app(model_class=MajorityModel, model_dir=sys.argv[1])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"listening on http://127.0.0.1:{server.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
