"""A run logged and a model version registered through the real MLflow server, with
artifacts landing in the S3 bucket."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.pyfunc import PythonModel

from vidflow.config import Settings
from vidflow.storage import s3_client


class MeanRating(PythonModel):  # type: ignore[misc]
    # No type hints on predict: MLflow would try to derive a schema from them.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input.mean(axis=1)


@pytest.fixture
def tracking(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", stack.tracking_uri)
    mlflow.set_tracking_uri(stack.tracking_uri)
    return MlflowClient(stack.tracking_uri)


def test_run_and_registered_model_version(
    stack: Settings, tracking: MlflowClient, unique: str
) -> None:
    import pandas as pd

    mlflow.set_experiment(f"tests-{unique}")
    name = f"tests-model-{unique}"
    with mlflow.start_run() as run:
        mlflow.log_param("components", 16)
        mlflow.log_metric("precision_at_10", 0.125)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=MeanRating(),
            input_example=pd.DataFrame({"a": [1.0], "b": [3.0]}),
            registered_model_name=name,
        )
    stored = tracking.get_run(run.info.run_id)
    assert stored.data.params["components"] == "16"
    assert stored.data.metrics["precision_at_10"] == pytest.approx(0.125)

    versions = tracking.search_model_versions(f"name = '{name}'")
    assert [v.version for v in versions] == ["1"]
    tracking.set_registered_model_alias(name, "champion", "1")
    assert tracking.get_model_version_by_alias(name, "champion").run_id == run.info.run_id

    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(loaded.predict(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))) == [2.0, 3.0]

    # Artifacts are proxied by the server into the MLflow bucket, not the local disk.
    objects = s3_client(stack).list_objects_v2(Bucket=stack.bucket_mlflow, Prefix="mlflow/")
    keys = [o["Key"] for o in objects.get("Contents", [])]
    assert any(info.model_id in k or run.info.run_id in k for k in keys), keys[:10]
