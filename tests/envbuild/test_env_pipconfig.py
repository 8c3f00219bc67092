"""pip's package-index settings reach uv: files in pip's order, PIP_* variables, UV_* wins."""

from __future__ import annotations

import os
from pathlib import Path

from ferry.envbuild.pipconfig import (
    pip_config_files,
    read_pip_settings,
    uv_arguments,
    uv_environment,
)


def conf(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def machine(tmp: Path) -> tuple[dict[str, str], Path, Path]:
    """A pretend machine: site-wide, user and virtual-environment pip.conf files."""
    home, prefix = tmp / "home", tmp / "venv"
    environ = {"HOME": str(home), "XDG_CONFIG_DIRS": str(tmp / "etc-xdg")}
    conf(tmp / "etc-xdg" / "pip" / "pip.conf", "[global]\nindex-url = https://site/simple\n"
         "extra-index-url = https://a/simple\n  https://b/simple\n")  # fmt: skip
    conf(home / ".config" / "pip" / "pip.conf", "[global]\nfind-links = /wheels\n"
         "[install]\nindex_url = https://user/simple\n")  # fmt: skip
    conf(prefix / "pip.conf", "[global]\ntrusted-host = a\n")
    return environ, home, prefix


def test_files_are_read_in_pips_order_and_install_overrides_global(tmp_path: Path) -> None:
    environ, home, prefix = machine(tmp_path)
    settings = read_pip_settings(environ, home, str(prefix))
    assert settings.index_url == "https://user/simple"
    assert settings.extra_index_urls == ("https://a/simple", "https://b/simple")
    assert settings.find_links == ("/wheels",)
    assert settings.trusted_hosts == ("a",)


def test_pip_variables_override_files_and_devnull_disables_them(tmp_path: Path) -> None:
    environ, home, prefix = machine(tmp_path)
    environ["PIP_INDEX_URL"] = "https://env/simple"
    environ["PIP_NO_INDEX"] = "yes"
    settings = read_pip_settings(environ, home, str(prefix))
    assert settings.index_url == "https://env/simple"
    assert settings.no_index
    environ["PIP_CONFIG_FILE"] = os.devnull
    assert pip_config_files(environ, home, str(prefix)) == []
    assert read_pip_settings(environ, home, str(prefix)).extra_index_urls == ()


def test_pip_config_file_variable_replaces_the_user_file(tmp_path: Path) -> None:
    environ, home, prefix = machine(tmp_path)
    environ["PIP_CONFIG_FILE"] = str(conf(tmp_path / "mine.conf", "[global]\npre = true\n"))
    settings = read_pip_settings(environ, home, str(prefix))
    assert settings.pre
    assert settings.find_links == ()  # the user file is skipped, as pip does
    assert settings.index_url == "https://site/simple"


def test_uv_arguments_spec_first_then_pip_and_best_match_across_indexes(tmp_path: Path) -> None:
    environ, home, prefix = machine(tmp_path)
    constraint = conf(tmp_path / "c.txt", "six<2\n")
    environ["PIP_CONSTRAINT"] = f"{constraint} {tmp_path / 'missing.txt'}"
    settings = read_pip_settings(environ, home, str(prefix))
    args = uv_arguments(settings, ["--extra-index-url https://spec/simple"], environ={})
    assert args == [
        "--index-url", "https://user/simple",
        "--extra-index-url", "https://spec/simple",
        "--extra-index-url", "https://a/simple",
        "--extra-index-url", "https://b/simple",
        "--find-links", "/wheels",
        "--allow-insecure-host", "a",
        "--constraint", str(constraint),
        "--index-strategy", "unsafe-best-match",
    ]  # fmt: skip
    spec_index = uv_arguments(settings, ["--index-url https://spec/simple"], environ={})
    assert spec_index[:2] == ["--index-url", "https://spec/simple"]


def test_uv_variables_the_user_set_win_over_pips_settings(tmp_path: Path) -> None:
    environ, home, prefix = machine(tmp_path)
    settings = read_pip_settings(environ, home, str(prefix))
    uv_env = {"UV_INDEX_URL": "https://uv/simple", "UV_EXTRA_INDEX_URL": "https://uvx/simple",
              "UV_INDEX_STRATEGY": "first-index"}  # fmt: skip
    args = uv_arguments(settings, [], environ=uv_env)
    assert "--index-url" not in args
    assert "--extra-index-url" not in args
    assert "--index-strategy" not in args
    assert "--find-links" in args


def test_uv_never_downloads_interpreters_and_gets_pips_certificate(tmp_path: Path) -> None:
    environ, home, prefix = machine(tmp_path)
    cert = conf(tmp_path / "ca.pem", "x")
    environ["PIP_CERT"] = str(cert)
    settings = read_pip_settings(environ, home, str(prefix))
    env = uv_environment(settings, {"PATH": "/bin", "VIRTUAL_ENV": "/elsewhere"})
    assert env["UV_PYTHON_DOWNLOADS"] == "never"
    assert env["SSL_CERT_FILE"] == str(cert)
    assert "VIRTUAL_ENV" not in env
