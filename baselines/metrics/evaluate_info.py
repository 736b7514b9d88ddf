"""What the local `evaluate` modules share: their input features and how their MetricInfo is assembled."""

import datasets
import evaluate

# probability rows and class indices (classification metrics)
PROBABILITIES = datasets.Features(
    {"predictions": datasets.List(datasets.Value("float64")), "references": datasets.Value("int64")}
)
# one score per record and 0/1 references (detection metrics)
SCORES = datasets.Features({"scores": datasets.Value("float64"), "references": datasets.Value("int64")})


def metric_info(description: str, inputs: str, features: datasets.Features, citation: str = "") -> evaluate.MetricInfo:
    return evaluate.MetricInfo(description=description, citation=citation, inputs_description=inputs, features=features)
