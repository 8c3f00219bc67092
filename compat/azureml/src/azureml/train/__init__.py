"""``azureml.train``: the reference SDK's training module paths, served by ferry
(``azureml.train.estimator``, ``azureml.train.sklearn``, ``azureml.train.dnn``, ``azureml.train.hyperdrive``)."""
