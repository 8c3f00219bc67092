"""Templates of the shim packages put beside ``ferry_runtime`` on a job's path.

``azureml/`` and ``ferry/`` here are copied as top-level packages by
:func:`ferry.runtime.layout.build_runtime_path`. They give a training script
``from azureml.core import Run`` and ``from ferry import Run`` without installing anything, and
step aside for the real package when the job's interpreter has one (see ``shadowing.py``).
"""
