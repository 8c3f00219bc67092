import six
from azureml.core import Run

Run.get_context().log("six", six.__version__)
