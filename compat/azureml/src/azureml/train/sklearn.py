"""``azureml.train.sklearn``: the scikit-learn estimator."""

from ferry.estimator import SKLearn

__all__ = ["SKLearn"]
