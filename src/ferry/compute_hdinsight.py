"""``HDInsightCompute``: a Spark cluster whose head node is reached over SSH, as the reference's.

::

    config = HDInsightCompute.attach_configuration(address="head.example.org", ssh_port=22,
                                                   username="sshuser",
                                                   private_key_file="~/.ssh/id_ed25519")
    hdi = ComputeTarget.attach(ws, "hdi", config)
    rc = RunConfiguration(framework="pyspark")
    rc.target = hdi
    Experiment(ws, "spark").submit(ScriptRunConfig("src", "train-spark.py", run_config=rc))

``spark-submit`` runs on the head node (:mod:`ferry.targets.spark.hdinsight`); the snapshot and
environment go there as for any SSH target, and the driver's log, metrics and outputs come back.
A cluster named by resource id (or subscription, group and cluster name) gets its address from
the workspace (``ferry target alias RESOURCE_ID HOST``). A password or key passphrase is never
stored: it is read from the environment at run time (``FERRY_SSH_PASSWORD[_<TARGET>]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferry.compute import ComputeTarget, note
from ferry.compute_attach import reference_resource
from ferry.errors import TargetError

KIND = "hdinsight"


@dataclass(frozen=True)
class HDInsightAttachConfiguration:
    """What :meth:`HDInsightCompute.attach_configuration` returns (never a secret)."""

    config: dict[str, Any]
    kind: str = KIND

    def to_dict(self) -> dict[str, Any]:
        return dict(self.config)

    def __repr__(self) -> str:
        return f"HDInsightCompute.attach_configuration({self.config})"


class HDInsightCompute(ComputeTarget):
    """A Spark cluster reached over SSH; PySpark runs are submitted on its head node."""

    _noun = "HDInsight"

    @staticmethod
    def attach_configuration(
        username: str | None = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        cluster_name: str | None = None,
        resource_id: str | None = None,
        address: str | None = None,
        ssh_port: int | str = 22,
        password: str = "",
        private_key_file: str = "",
        private_key_passphrase: str = "",
        master: str = "yarn",
        spark_submit: str = "spark-submit",
        conf: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> HDInsightAttachConfiguration:
        """The reference's signature; ``master`` (``yarn`` on HDInsight, ``local[N]`` for Spark
        on the head alone), the head's ``spark_submit`` command and Spark ``conf`` are ferry's,
        and so are the SSH target's settings (``work_dir`` …) as keywords."""
        rid = reference_resource(
            KIND, address, resource_id, subscription_id, resource_group, cluster_name
        )
        config: dict[str, Any] = {
            "username": username or "sshuser",  # HDInsight's default SSH user
            "address": address,
            "ssh_port": int(ssh_port),
            "private_key_file": private_key_file,
            "subscription_id": subscription_id,
            "resource_group": resource_group,
            "resource_id": rid,
            "master": master,
            "spark_submit": spark_submit,
            "conf": dict(conf or {}),
            **settings,
        }
        config = {k: v for k, v in config.items() if v is not None}
        if password:
            config["password_from_env"] = True
        if private_key_passphrase:
            config["passphrase_from_env"] = True
        if password or private_key_passphrase:
            note(
                "SSH passwords and key passphrases are never stored; give them at run time in "
                "FERRY_SSH_PASSWORD[_<TARGET>] / FERRY_SSH_KEY_PASSPHRASE[_<TARGET>]"
            )
        if address is not None:  # else checked at attach, once the workspace gave the address
            _checker_for_hdinsight()(config)
        return HDInsightAttachConfiguration(config)

    @property
    def master(self) -> str:
        return str(self.config.get("master") or "yarn")


def _checker_for_hdinsight() -> Any:
    """The hdinsight kind's own check (it needs asyncssh: the hint says how to install it)."""
    try:
        from ferry.targets.spark.hdinsight import HDInsightTarget
    except ImportError as exc:
        raise TargetError(
            f"the hdinsight target needs {exc.name or 'a missing library'} — install it with: "
            "pip install 'ferry[ssh]'"
        ) from exc
    return HDInsightTarget.validate_config
